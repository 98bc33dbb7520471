"""The tables the kit owns (services/kit/audit.py, services/kit/outbox.py) have one shape in every
schema that has them, as the migrations left them in the database: same columns, types, nullability,
defaults and indexes as the kit declares."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from services.kit.audit import audit_table
from services.kit.db import Database, service_metadata
from services.kit.outbox import outbox_table
from tests.conftest import Stack

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def declared(table: Table) -> dict[str, Any]:
    return {
        "columns": {
            # a serial key's default is its sequence
            c.name: (
                str(c.type.compile(dialect=DIALECT)),
                c.nullable,
                c.server_default is not None or c is table.autoincrement_column,
            )
            for c in table.columns
        },
        "primary_key": [c.name for c in table.primary_key.columns],
        "indexes": {
            i.name: ([c.name for c in i.columns], bool(i.dialect_options["postgresql"]["where"] is not None))
            for i in table.indexes
        },
    }


def reflected(conn: Connection, schema: str, name: str) -> dict[str, Any]:
    insp = inspect(conn)
    return {
        "columns": {
            c["name"]: (str(c["type"].compile(dialect=DIALECT)), c["nullable"], c.get("default") is not None)
            for c in insp.get_columns(name, schema=schema)
        },
        "primary_key": insp.get_pk_constraint(name, schema=schema)["constrained_columns"],
        "indexes": {
            i["name"]: (list(i["column_names"]), bool(i.get("dialect_options", {}).get("postgresql_where")))
            for i in insp.get_indexes(name, schema=schema)
        },
        # a serial key's sequence is named after its schema: compare without it
        "defaults": {
            c["name"]: (c.get("default") or "").replace(f'"{schema}".', "")
            for c in insp.get_columns(name, schema=schema)
        },
    }


async def shape_in(stack: Stack, schema: str, name: str) -> dict[str, Any]:
    db = Database(stack.db_urls[schema], schema)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(reflected, schema, name)
    finally:
        await db.dispose()


KIT_TABLES = {"audit_log": audit_table, "outbox": outbox_table}
CASES = [
    ("auth", "audit_log"),
    ("permissions", "audit_log"),
    ("docs", "audit_log"),
    ("auth", "outbox"),
    ("permissions", "outbox"),
    ("docs", "outbox"),
]


@pytest.mark.parametrize(("schema", "name"), CASES)
async def test_the_migrated_table_has_the_kit_shape(stack: Stack, schema: str, name: str) -> None:
    want = declared(KIT_TABLES[name](service_metadata(schema)))
    got = await shape_in(stack, schema, name)
    assert got["columns"] == want["columns"]
    assert got["primary_key"] == want["primary_key"]
    # Unnamed primary-key indexes aside, the indexes are the kit's, by name, columns and partiality.
    assert got["indexes"] == want["indexes"]


@pytest.mark.parametrize("name", ["audit_log", "outbox"])
async def test_defaults_agree_between_the_schemas(stack: Stack, name: str) -> None:
    shapes = {schema: await shape_in(stack, schema, name) for schema in ("auth", "permissions", "docs")}
    for schema in ("permissions", "docs"):
        assert shapes[schema]["defaults"] == shapes["auth"]["defaults"], schema
        assert shapes[schema]["columns"] == shapes["auth"]["columns"], schema
