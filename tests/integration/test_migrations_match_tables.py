"""Every service's migrations build exactly the tables its code declares (`services/<name>/tables.py`).

A column added to `tables.py` without a migration, or a migration that drifts from the declared
table (a type, a nullable flag, an index, a foreign key), shows up here as Alembic's autogenerate
diff against the migrated database of the test stack, instead of as an error in production."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from infra import catalog
from services.kit import migrations
from services.kit.db import async_url
from tests.conftest import Stack

MIGRATED = [s.name for s in catalog.SERVICES if s.has_db and migrations.has_migrations(s.name)]

# What the migrations create that tables.py deliberately does not declare, because SQLAlchemy's
# metadata has no way to say it (functions used by row-level security policies, e.g.); name them here.
NOT_IN_METADATA: dict[str, set[str]] = {}


def _diff(service: str, sync_conn: Any) -> list[Any]:
    metadata = importlib.import_module(f"services.{service}.tables").metadata

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name in ("alembic_version", *NOT_IN_METADATA.get(service, ())):
            return False
        return True

    ctx = MigrationContext.configure(
        connection=sync_conn,
        opts={
            "target_metadata": metadata,
            "compare_type": True,
            "compare_server_default": False,  # server defaults are rendered differently by PostgreSQL
            "include_schemas": True,
            "include_name": lambda name, type_, parent: type_ != "schema" or name == service,
            "include_object": include_object,
        },
    )
    return list(compare_metadata(ctx, metadata))


@pytest.mark.parametrize("service", MIGRATED)
async def test_migrations_build_the_declared_tables(stack: Stack, service: str) -> None:
    # The service role's default search_path is its own schema, which Alembic would then treat as the
    # unnamed default schema and compare against nothing; `public` keeps the schema explicit.
    engine = create_async_engine(
        async_url(stack.db_urls[service]),
        poolclass=pool.NullPool,
        connect_args={"server_settings": {"search_path": "public"}},
    )
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: _diff(service, c))
    finally:
        await engine.dispose()
    assert diff == [], f"services/{service}: migrations and tables.py differ:\n" + "\n".join(map(str, diff))


def test_every_service_with_tables_has_migrations() -> None:
    assert set(MIGRATED) == {s.name for s in catalog.SERVICES if s.has_db}
