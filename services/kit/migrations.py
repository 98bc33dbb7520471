"""Alembic per service, with the version table inside the service's own schema.

Each service keeps `migrations/versions/*.py`; this module is its env.py logic, so
`atrium migrate` and the test harness run every service's migrations the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from .db import async_url

SERVICES_DIR = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["schema"] = schema
    return cfg


def has_migrations(service: str) -> bool:
    return (SERVICES_DIR / service / "migrations" / "versions").is_dir()


async def upgrade(service: str, url: str, schema: str, revision: str = "head") -> None:
    """Run `service`'s migrations up to `revision` as the service's own role."""
    cfg = alembic_config(service, url, schema)
    script = ScriptDirectory.from_config(cfg)
    engine = create_async_engine(
        async_url(url), poolclass=pool.NullPool, connect_args={"server_settings": {"search_path": schema}}
    )

    def run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        def do_upgrade(rev, context):  # type: ignore[no-untyped-def]
            return script._upgrade_revs(revision, rev)

        with EnvironmentContext(cfg, script, fn=do_upgrade, destination_rev=revision) as env:
            env.configure(
                connection=sync_conn, version_table_schema=schema, target_metadata=None, include_schemas=False
            )
            with env.begin_transaction():
                env.run_migrations()

    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'SET search_path TO "{schema}"'))
            await conn.run_sync(run)
    finally:
        await engine.dispose()


def upgrade_sync(service: str, url: str, schema: str) -> None:
    asyncio.run(upgrade(service, url, schema))


def current(service: str, url: str, schema: str) -> None:
    command.current(alembic_config(service, url, schema))
