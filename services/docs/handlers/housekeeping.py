"""What the service's background loops do (app.py runs them): relay the outbox, forget old tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update

from contracts.documents import DocumentsSettingsStored
from services.kit.db import Database

from ..tables import outbox, tasks
from .common import now
from .pipeline import TERMINAL_TASK

Publish = Callable[[str, dict[str, Any], str], Awaitable[None]]  # (subject, payload, Nats-Msg-Id)


async def relay_outbox(db: Database, publish: Publish, batch: int = 100) -> int:
    """Publish unsent outbox rows, then mark them sent. A crash in between publishes again; the stream's
    duplicate window (by `Nats-Msg-Id`) drops the repeat."""
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(outbox)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for r in rows:
            await publish(r.subject, r.payload, r.msg_id)
        if rows:
            await s.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=func.now())
            )
    return len(rows)


async def apply_retention(db: Database, settings: DocumentsSettingsStored) -> int:
    """Delete finished tasks older than the retention setting, and outbox rows sent more than a day ago."""
    cutoff = now() - timedelta(days=settings.task_retention_days)
    async with db.transaction() as s:
        gone = await s.execute(
            delete(tasks).where(tasks.c.created_at < cutoff, tasks.c.status.in_(TERMINAL_TASK))
        )
        await s.execute(delete(outbox).where(outbox.c.sent_at < now() - timedelta(days=1)))
    return cast("CursorResult[Any]", gone).rowcount or 0
