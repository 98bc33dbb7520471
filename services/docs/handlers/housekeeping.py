"""The service's background work: forgetting old tasks (app.py's loop), and forgetting a deleted user
(`events.auth.user_deleted`). The kit's outbox relays and prunes the outbox itself (services/kit/outbox.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select

from contracts import Header
from contracts.auth import UserDeleted
from contracts.documents import SettingsChanged
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.logging import log_fields

from ..tables import audit_log, categories, documents, tasks
from .common import DocsDeps, now
from .files import remove_document
from .pipeline import TERMINAL_TASK

FORGET_BATCH = 50  # documents removed per transaction when a user is deleted

log = logging.getLogger("atrium.docs")


async def apply_retention(deps: DocsDeps) -> int:
    """Delete finished tasks older than the retention setting (`task_retention_days`)."""
    cutoff = now() - timedelta(days=deps.settings().task_retention_days)
    async with deps.db.transaction() as s:
        gone = await s.execute(
            delete(tasks).where(tasks.c.created_at < cutoff, tasks.c.status.in_(TERMINAL_TASK))
        )
    removed = int(getattr(gone, "rowcount", 0) or 0)
    if removed:
        log_fields(log, logging.INFO, "old tasks removed", count=removed)
    return removed


async def forget_user(event: UserDeleted, ctx: Ctx, deps: DocsDeps) -> None:
    """A deleted user's documents go, with every file of every run (original, results, previews) and their
    text; then their categories and task history. Idempotent: a redelivery finds less to delete. Shares to
    and from the user (once documents can be shared) are removed here too."""
    owner = event.user_id
    removed = 0
    while True:
        async with deps.db.transaction() as s:
            rows = (
                await s.execute(
                    select(documents)
                    .where(documents.c.owner_id == owner)
                    .limit(FORGET_BATCH)
                    .with_for_update()
                )
            ).all()
            for row in rows:
                await remove_document(s, row, deps)
        for row in rows:
            await deps.mark_superseded(row.run_id, "deleted")
        removed += len(rows)
        if len(rows) < FORGET_BATCH:
            break
        if ctx.heartbeat is not None:  # a user with many documents takes a while: keep the message ours
            await ctx.heartbeat()
    async with deps.db.transaction() as s:
        await s.execute(delete(categories).where(categories.c.owner_id == owner))  # links cascade
        await s.execute(delete(tasks).where(tasks.c.owner_id == owner))
        # Hook for document sharing: delete the shares the user made and those made to them, here.
        await record_audit(s, audit_log, ctx, "user.forgotten", target_id=owner, documents=removed)
    log_fields(log, logging.INFO, "deleted user's documents removed", user_id=str(owner), documents=removed)


async def record_settings_change(event: SettingsChanged, ctx: Ctx, deps: DocsDeps) -> None:
    """The ai service changed the Documents settings: an audit entry with the actor and their address."""
    at = Ctx(request_id=ctx.request_id, headers={Header.CLIENT_IP: event.client_ip or ""})
    async with deps.db.transaction() as s:
        await record_audit(
            s,
            audit_log,
            at,
            "settings.changed",
            actor_id=event.actor_id,
            changed=event.changed,
            provider=event.provider,
            model=event.model,
            base_url=event.base_url,
            revision=event.revision,
        )
