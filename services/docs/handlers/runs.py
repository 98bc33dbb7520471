"""Runs of the pipeline: a document's first run (recorded with its upload), a re-process by its owner, an
administrator's replay. Each run is announced through the outbox, in the transaction that records it."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import RateLimited
from contracts.docs_api import AccessRole, DocumentRef, DocumentSummary, ReplayDocuments, ReplayResult
from contracts.documents import DOCUMENT_UPLOADED, DocumentUploaded, RunKind
from services.kit.audit import record_audit
from services.kit.bus import Ctx

from ..access import Caller, acting, as_admin, as_system
from ..rows import DocumentRow
from ..tables import audit_log, documents, tasks
from .common import DocsDeps, document_for, now, progress, user
from .views import summary_of


def uploaded_event(row: DocumentRow, kind: RunKind) -> DocumentUploaded:
    return DocumentUploaded(
        document_id=row.id,
        owner_id=row.owner_id,
        run_id=row.run_id,
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        object_name=row.object_name,
        uploaded_at=row.created_at,
        reprocess=kind == "reprocess",
        kind=kind,
    )


async def queue_run(s: AsyncSession, row: DocumentRow, kind: RunKind, deps: DocsDeps) -> None:
    """Record the run's first task and the event announcing it, in the caller's transaction (the outbox)."""
    await s.execute(
        insert(tasks).values(
            id=uuid.uuid4(),
            owner_id=row.owner_id,
            document_id=row.id,
            filename=row.filename,
            run_id=row.run_id,
            stage="extract",
            kind=kind,
            status="queued",
            attempt=0,
        )
    )
    if deps.queue_work:  # sent by the outbox relay once this transaction commits
        await deps.outbox.enqueue(
            s, DOCUMENT_UPLOADED, uploaded_event(row, kind), msg_id=f"{row.id}:{row.run_id}"
        )


async def _within_rerun_limit(s: AsyncSession, owner: UUID, deps: DocsDeps) -> None:
    """Refuse a re-run past the owner's hourly limit (the runs they started in the last hour, counted from
    their tasks; one owner's re-runs serialise on an advisory lock, so parallel requests cannot overshoot)."""
    await s.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"reprocess:{owner}"))))
    since = now() - timedelta(hours=1)
    started, oldest = (
        await s.execute(
            select(func.count(), func.min(tasks.c.created_at)).where(
                tasks.c.owner_id == owner,
                tasks.c.kind == "reprocess",
                tasks.c.stage == "extract",
                tasks.c.created_at > since,
            )
        )
    ).one()
    if started >= deps.reprocess_per_hour:
        retry = max(1, math.ceil((oldest - since).total_seconds())) if oldest else 3600
        raise RateLimited(
            f"You have re-processed {started} documents in the last hour, the limit "
            f"(ATRIUM_REPROCESS_PER_HOUR); try again in {retry} s.",
            {"retry_after_s": retry, "limit": deps.reprocess_per_hour},
        )


async def _new_run(s: AsyncSession, doc_id: UUID, deps: DocsDeps) -> DocumentRow:
    """Supersede the current run's unfinished tasks and start the document over (queued, announced)."""
    await s.execute(
        update(tasks)
        .where(tasks.c.document_id == doc_id, tasks.c.status.in_(("queued", "running")))
        .values(status="superseded", finished_at=func.now())
    )
    row = (
        await s.execute(
            update(documents)
            .where(documents.c.id == doc_id)
            .values(
                run_id=uuid.uuid4(),
                status="queued",
                failure_reason=None,
                failure_message=None,
                preview_pages=0,
                ocr_done=None,
                ocr_total=None,
                updated_at=func.now(),
            )
            .returning(documents)
        )
    ).one()
    await queue_run(s, row, "reprocess", deps)
    return row


async def _announce_run(old_run: UUID, row: DocumentRow, deps: DocsDeps) -> None:
    """After the new run's transaction: the workers skip the old run, the owner sees the new one queued."""
    await deps.mark_superseded(old_run, "superseded")
    await progress(deps, row.owner_id, row.id, row.run_id, "queued", "re-processing")


async def _rerun_any(
    s: AsyncSession,
    doc_id: UUID,
    ctx: Ctx,
    *,
    actor_id: UUID | None,
    audit_action: str,
    deps: DocsDeps,
    **why: Any,
) -> tuple[UUID, DocumentRow] | None:
    """Anyone's document run again (an administrator's replay, the service's own after a restore), with no
    hourly limit: (the old run, the row), or None when there is no such document."""
    old = (
        await s.execute(select(documents.c.run_id).where(documents.c.id == doc_id).with_for_update())
    ).first()
    if old is None:
        return None
    row = await _new_run(s, doc_id, deps)
    await record_audit(s, audit_log, ctx, audit_action, actor_id=actor_id, target_id=doc_id, **why)
    return old.run_id, row


async def reprocess_one(
    doc_id: UUID, caller: Caller, ctx: Ctx, deps: DocsDeps
) -> tuple[DocumentRow, AccessRole]:
    """A new run of the document by its owner or an editor: the row as it is now, and the caller's role."""
    async with acting(deps.db, caller, write=True) as s:
        found = await document_for(s, doc_id, caller, "editor", what="re-process it", lock=True)
        await _within_rerun_limit(s, found.owner_id, deps)  # the owner's runs, by them or their editors
        row = await _new_run(s, doc_id, deps)
        await record_audit(
            s,
            audit_log,
            ctx,
            "document.reprocessed",
            actor_id=caller.user_id,
            target_id=doc_id,
            role=found.access_role,
        )
    await _announce_run(found.run_id, row, deps)
    return row, found.access_role


async def resume_run(doc_id: UUID, ctx: Ctx, deps: DocsDeps, *, audit_action: str) -> bool:
    """The service's own new run of a document (after a restore, past row-level security): False when the
    document is gone."""
    async with as_system(deps.db, "restore") as s:
        started = await _rerun_any(s, doc_id, ctx, actor_id=None, audit_action=audit_action, deps=deps)
    if started is None:
        return False
    await _announce_run(*started, deps)
    return True


async def reprocess_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DocumentSummary:
    caller = await user(ctx, deps)
    row, role = await reprocess_one(cmd.id, caller, ctx, deps)
    async with acting(deps.db, caller) as s:
        return await summary_of(s, row, role, caller)


async def replay_documents(cmd: ReplayDocuments, ctx: Ctx, deps: DocsDeps) -> ReplayResult:
    caller = Caller(ctx.require_actor())  # access="admin" was checked by the service before this runs
    queued = missing = 0
    for doc_id in dict.fromkeys(cmd.ids):
        async with as_admin(deps.db, caller) as s:
            started = await _rerun_any(
                s,
                doc_id,
                ctx,
                actor_id=caller.user_id,
                audit_action="document.reprocessed",
                deps=deps,
                replay=True,
            )
        if started is None:
            missing += 1
            continue
        await _announce_run(*started, deps)
        queued += 1
    return ReplayResult(queued=queued, missing=missing)
