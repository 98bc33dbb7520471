"""The transactional outbox: an event another service must not miss leaves in the same transaction as
the change it announces.

    # tables.py
    outbox = outbox_table(metadata)
    # the dependency factory
    deps.outbox = svc.outbox(tables.outbox, db)       # the kit runs its relay loop
    # a handler
    async with deps.db.transaction() as s:
        ...                                             # the change
        await deps.outbox.enqueue(s, USER_DELETED, UserDeleted(...), msg_id=f"user_deleted:{user_id}")
    await deps.outbox.flush()                           # out before the reply; else the relay sends it

The relay publishes unsent rows in order, marks them sent, and is woken right after each commit that
enqueued something (and every `idle_s` otherwise, so rows written by another process go out too).
A crash between commit and publish only delays the event; a crash between publish and marking it
sent publishes it again, and the stream drops the repeat by its `Nats-Msg-Id` (duplicate window).
One relay per schema runs at a time (an advisory lock), so events leave in the order they committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import op
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, String, Table, event, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import Header
from contracts.base import Event

from .db import Database
from .logging import log_fields, request_id_var

log = logging.getLogger("atrium.outbox")

M = TypeVar("M", bound=BaseModel)
RawPublish = Callable[[str, bytes, dict[str, str]], Awaitable[None]]  # (subject, body, headers)

BATCH = 100
IDLE_S = 1.0
KEEP_SENT = timedelta(days=1)
PRUNE_EVERY_S = 3600.0
FLUSH_TIMEOUT_S = 3.0
PUBLISH_TIMEOUT_S = 10.0
_WAKE_KEY = "atrium.outbox.wake"


def jetstream_publisher(js: Any) -> RawPublish:
    """Publishes through a JetStream context and waits for the stream's ack (the relay's `publish`)."""

    async def publish(subject: str, body: bytes, headers: dict[str, str]) -> None:
        await js.publish(subject, body, headers=headers, timeout=PUBLISH_TIMEOUT_S)

    return publish


def outbox_table(metadata: MetaData) -> Table:
    """The `outbox` table in a service's schema (create it with `create_outbox_table` in a migration)."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("subject", String(200), nullable=False),
        Column("msg_id", String(200), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )


def create_outbox_table(schema: str) -> None:
    """Alembic: create the outbox as `outbox_table` describes it (version 1 of its shape). A later change
    of the shape gets its own helper, called by a new migration of every service."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("msg_id", sa.String(200), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"), schema=schema
    )


class Outbox:
    """One service's outbox: `enqueue` inside the caller's transaction, `flush` after it, the relay loop
    (`relay`, run by the kit) for everything else."""

    def __init__(
        self,
        table: Table,
        db: Database,
        publish: RawPublish,
        *,
        batch: int = BATCH,
        keep_sent: timedelta = KEEP_SENT,
        idle_s: float = IDLE_S,
    ):
        self.table = table
        self.db = db
        self.publish = publish
        self.batch = batch
        self.keep_sent = keep_sent
        self.idle_s = idle_s
        self.wakeup = asyncio.Event()  # set after a commit that enqueued; the relay loop waits on it
        self._lock = asyncio.Lock()  # one pass at a time in this process (the advisory lock: across them)
        self._next_prune = 0.0
        self._commits = 0  # commits in this process that enqueued something
        self._drained = -1  # `_commits` when the last complete drain began (everything before it is out)
        self._drained_at = 0.0

    async def enqueue(self, session: AsyncSession, desc: Event[M], event_: M, *, msg_id: str) -> None:
        """Record `event_` for `desc.subject` in the session's transaction. `msg_id` must name the fact
        (the same on a retry of the same change), so the stream drops a repeat."""
        if not isinstance(event_, desc.model):
            raise TypeError(f"{desc.subject} carries {desc.model.__name__}, not {type(event_).__name__}")
        rid = request_id_var.get()
        await session.execute(
            sa.insert(self.table).values(
                subject=desc.subject,
                msg_id=msg_id,
                payload=event_.model_dump(mode="json"),
                headers={Header.REQUEST_ID: rid} if rid else {},
            )
        )
        self._wake_after_commit(session.sync_session)

    def _wake_after_commit(self, session: Session) -> None:
        if session.info.get(_WAKE_KEY):
            return
        session.info[_WAKE_KEY] = True

        def committed(s: Session) -> None:
            s.info.pop(_WAKE_KEY, None)
            self._commits += 1
            self.wakeup.set()

        event.listen(session, "after_commit", committed, once=True)

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Publish what is pending now, so the event is out before the caller replies. Never raises:
        if NATS is away, the relay loop keeps trying."""
        try:
            await asyncio.wait_for(self._drain(), timeout_s)
        except Exception as exc:
            log_fields(log, logging.WARNING, "outbox not sent yet; the relay retries", error=repr(exc))
            self.wakeup.set()

    async def relay(self) -> None:
        """One pass of the relay loop: publish everything pending, and now and then forget old sent rows.

        Woken by a commit whose rows `flush` already sent, it does nothing; the look for rows other
        processes left (a crash, NATS away) comes every `idle_s` and asks first, in one statement,
        whether there are any (a pass is four: BEGIN, the advisory lock, the rows, COMMIT)."""
        fresh = self._drained == self._commits
        if fresh and time.monotonic() - self._drained_at < self.idle_s:
            return
        if not fresh or await self.pending(limit=1):
            await self._drain()
        else:
            self._drained_at = time.monotonic()
        if time.monotonic() >= self._next_prune:
            await self.prune()
            self._next_prune = time.monotonic() + PRUNE_EVERY_S

    async def _drain(self) -> None:
        seen, began = self._commits, time.monotonic()
        while (sent := await self._pass()) == self.batch:
            pass
        if sent is not None:  # None: another process relays now; this one's rows may still wait
            self._drained, self._drained_at = seen, began

    async def relay_once(self) -> int:
        """Publish up to `batch` unsent rows in order and mark them sent; returns how many were sent.
        A failed publish stops the pass: the rows before it are marked, the rest wait for the next one."""
        return await self._pass() or 0

    async def _pass(self) -> int | None:
        """`relay_once`, or None when another process holds the relay's lock."""
        async with self._lock, self.db.transaction() as s:
            mine = (
                await s.execute(sa.select(func.pg_try_advisory_xact_lock(func.hashtext(self.table.fullname))))
            ).scalar_one()
            if not mine:
                return None  # another process is relaying this outbox
            t = self.table
            rows = (
                await s.execute(
                    sa.select(t.c.id, t.c.subject, t.c.msg_id, t.c.payload, t.c.headers)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch)
                )
            ).all()
            sent: list[int] = []
            failure: Exception | None = None
            for r in rows:
                headers: dict[str, str] = {**(r.headers or {}), Header.MSG_ID: r.msg_id}
                try:
                    await self.publish(r.subject, json.dumps(r.payload).encode(), headers)
                except Exception as exc:
                    failure = exc
                    break
                sent.append(r.id)
            if sent:
                await s.execute(sa.update(t).where(t.c.id.in_(sent)).values(sent_at=func.now()))
        if failure is not None:
            raise failure
        return len(sent)

    async def prune(self) -> int:
        """Forget rows sent more than `keep_sent` ago."""
        cutoff = datetime.now(UTC) - self.keep_sent
        async with self.db.transaction() as s:
            gone = await s.execute(sa.delete(self.table).where(self.table.c.sent_at < cutoff))
        return int(getattr(gone, "rowcount", 0) or 0)

    async def pending(self, limit: int | None = None) -> int:
        """How many rows wait to be sent (counting at most `limit`): one statement, no transaction."""
        unsent = sa.select(self.table.c.id).where(self.table.c.sent_at.is_(None)).limit(limit)
        async with self.db.read() as s:
            n = (await s.execute(sa.select(func.count()).select_from(unsent.subquery()))).scalar_one()
        return int(n)
