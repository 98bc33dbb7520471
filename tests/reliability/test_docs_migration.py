"""Migration 0009 brings the documents outbox and audit log to the kit's shapes on a database that has
data: unsent events are kept and sent by the kit's relay, audit rows are kept with their IPs as INET.
Its own PostgreSQL (real, embedded), so it can stop at revision 0008 first."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from contracts import Header
from contracts.documents import DOCUMENT_UPLOADED
from infra.embedded import EmbeddedPostgres, provision
from services.docs import tables
from services.kit import migrations
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.outbox import Outbox

UNSENT = {"document_id": str(uuid.uuid4()), "note": "an upload announced before the crash"}


@pytest_asyncio.fixture
async def docs_at_0008(tmp_path: Path) -> AsyncIterator[str]:
    pg = EmbeddedPostgres(tmp_path).start()
    try:
        url = (await provision(pg.admin_url, tmp_path, services=("docs",)))["docs"]
        await migrations.upgrade("docs", url, "docs", revision="0008")
        yield url
    finally:
        pg.stop()


async def test_0009_keeps_unsent_events_and_audit_rows(docs_at_0008: str) -> None:
    db = Database(docs_at_0008, "docs")
    actor = uuid.uuid4()
    try:
        async with db.transaction() as s:
            await s.execute(
                text(
                    "INSERT INTO outbox (subject, msg_id, payload, sent_at) VALUES "
                    "(:subject, 'old-sent', '{}', now()), (:subject, 'old-unsent', CAST(:payload AS jsonb), NULL)"
                ),
                {"subject": DOCUMENT_UPLOADED.subject, "payload": json.dumps(UNSENT)},
            )
            for ip in ("203.0.113.7", "2001:db8::1", "not-an-address", None):
                await s.execute(
                    text(
                        "INSERT INTO audit_log (id, action, actor_id, ip, request_id, details) "
                        "VALUES (:id, 'document.downloaded', :actor, :ip, 'r1', '{\"filename\": \"a.pdf\"}')"
                    ),
                    {"id": uuid.uuid4(), "actor": actor, "ip": ip},
                )
        await migrations.upgrade("docs", docs_at_0008, "docs")

        async with db.session() as s:
            ips = (
                await s.execute(
                    text("SELECT host(ip) FROM audit_log WHERE actor_id = :a ORDER BY host(ip) NULLS LAST"),
                    {"a": actor},
                )
            ).scalars()
            assert list(ips) == ["2001:db8::1", "203.0.113.7", None, None]  # a non-address became NULL
            details = (await s.execute(text("SELECT DISTINCT details->>'filename' FROM audit_log"))).scalars()
            assert list(details) == ["a.pdf"]
            indexes = (
                await s.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_log'"))
            ).scalars()
            assert {i for i in indexes if i.startswith("ix_")} == {
                "ix_audit_log_at",
                "ix_audit_log_action",
                "ix_audit_log_actor_id",
                "ix_audit_log_target_id",
            }

        # The tables now are what services/docs/tables.py (the kit's shapes) declares: columns and types by
        # alembic's comparison, indexes by their columns (the kit's `audit_table` names its indexes
        # `ix_docs_audit_log_*` through the naming convention, `create_audit_indexes` `ix_audit_log_*`).
        def differences(conn: Any) -> list[Any]:
            def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
                table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
                return type_ != "index" and table in ("outbox", "audit_log")

            context = MigrationContext.configure(conn, opts={"include_object": ours})
            return list(compare_metadata(context, tables.metadata))

        def indexed(conn: Any, table: str) -> set[tuple[tuple[str, ...], bool]]:
            found = inspect(conn).get_indexes(table, schema="docs")
            return {
                (tuple(i["column_names"]), bool(i.get("dialect_options", {}).get("postgresql_where")))
                for i in found
            }

        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
            for table in (tables.outbox, tables.audit_log):
                declared = {
                    (tuple(c.name for c in i.columns), i.dialect_options["postgresql"]["where"] is not None)
                    for i in table.indexes
                }
                assert await conn.run_sync(indexed, table.name) == declared, table.name

        # The kit's relay sends the event that waited, as it was stored, with its Nats-Msg-Id.
        sent: list[tuple[str, bytes, dict[str, str]]] = []

        async def publish(subject: str, body: bytes, headers: dict[str, str]) -> None:
            sent.append((subject, body, headers))

        assert await Outbox(tables.outbox, db, publish).relay_once() == 1
        assert [(s, json.loads(b), h) for s, b, h in sent] == [
            (DOCUMENT_UPLOADED.subject, UNSENT, {Header.MSG_ID: "old-unsent"})
        ]

        # New audit rows take the kit's helper: the caller's IP as INET.
        async with db.transaction() as s:
            ctx = Ctx(request_id="r2", headers={Header.CLIENT_IP: "198.51.100.9"})
            await record_audit(s, tables.audit_log, ctx, "document.deleted", actor_id=actor, filename="b.pdf")
        async with db.session() as s:
            row = (
                await s.execute(text("SELECT host(ip), details FROM audit_log WHERE request_id = 'r2'"))
            ).one()
            assert tuple(row) == ("198.51.100.9", {"filename": "b.pdf"})
    finally:
        await db.dispose()
