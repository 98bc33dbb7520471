"""The audit log every service keeps in its own schema: one shape, one helper.

    # tables.py
    audit_log = audit_table(metadata)
    # a handler, inside its transaction
    await record_audit(s, audit_log, ctx, "user.deleted", actor_id=actor.user_id, target_id=user.id,
                       sessions_ended=3)

`target_id` is the one thing the action is about (a user, a group, a document); anything else goes
into `details` (JSON). Callers pass facts only: never a password, a token or a key.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from alembic import op
from pydantic_core import to_jsonable_python
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, func, text
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from .context import Ctx

ACTION_CHARS = 64
REQUEST_ID_CHARS = 64
INDEXED = ("at", "action", "actor_id", "target_id")  # each gets `ix_audit_log_<column>`


def audit_table(metadata: MetaData) -> Table:
    """The `audit_log` table in a service's schema (create it with `create_audit_table` in a migration)."""
    return Table(
        "audit_log",
        metadata,
        Column("id", PgUUID(as_uuid=True), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("action", String(ACTION_CHARS), nullable=False),
        Column("actor_id", PgUUID(as_uuid=True)),
        Column("target_id", PgUUID(as_uuid=True)),
        Column("ip", INET),
        Column("request_id", String(REQUEST_ID_CHARS)),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        *(Index(f"ix_audit_log_{column}", column) for column in INDEXED),
    )


def create_audit_table(schema: str) -> None:
    """Alembic: create the audit log as `audit_table` describes it (version 1 of its shape)."""
    op.create_table(
        "audit_log",
        sa.Column("id", PgUUID(as_uuid=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.String(ACTION_CHARS), nullable=False),
        sa.Column("actor_id", PgUUID(as_uuid=True)),
        sa.Column("target_id", PgUUID(as_uuid=True)),
        sa.Column("ip", INET),
        sa.Column("request_id", sa.String(REQUEST_ID_CHARS)),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=schema,
    )
    create_audit_indexes(schema)


def create_audit_indexes(schema: str) -> None:
    for column in INDEXED:
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column], schema=schema)


def client_ip(ctx: Ctx) -> str | None:
    """The caller's IP as the gateway reported it, or None when there is none or it is not an address."""
    try:
        return str(ipaddress.ip_address(ctx.client_ip)) if ctx.client_ip else None
    except ValueError:
        return None


async def record_audit(
    session: AsyncSession,
    table: Table,
    ctx: Ctx,
    action: str,
    *,
    actor_id: UUID | None = None,
    target_id: UUID | None = None,
    at: datetime | None = None,
    **details: Any,
) -> UUID:
    """One audit row in the caller's transaction, with the caller's IP and request id from `ctx`;
    returns its id (an event announcing the same change can carry it as its msg id)."""
    entry = uuid.uuid4()
    values: dict[str, Any] = {
        "id": entry,
        "action": action,
        "actor_id": actor_id,
        "target_id": target_id,
        "ip": client_ip(ctx),
        "request_id": ctx.request_id[:REQUEST_ID_CHARS] or None,
        "details": to_jsonable_python(details),
    }
    if at is not None:
        values["at"] = at
    await session.execute(sa.insert(table).values(**values))
    return entry
