"""The service's background work (app.py's loops): forgetting old tasks. The kit's outbox relays and prunes
the outbox itself (services/kit/outbox.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from services.kit.logging import log_fields

from ..access import as_system
from ..tables import tasks
from .common import DocsDeps, now
from .pipeline import TERMINAL_TASK

log = logging.getLogger("atrium.docs")


async def apply_retention(deps: DocsDeps) -> int:
    """Delete finished tasks older than the retention setting (`task_retention_days`)."""
    cutoff = now() - timedelta(days=deps.settings().task_retention_days)
    async with as_system(deps.db, "retention") as s:
        gone = await s.execute(
            delete(tasks).where(tasks.c.created_at < cutoff, tasks.c.status.in_(TERMINAL_TASK))
        )
    removed = int(getattr(gone, "rowcount", 0) or 0)
    if removed:
        log_fields(log, logging.INFO, "old tasks removed", count=removed)
    return removed
