"""Runs of the pipeline: a document's first run (recorded with its upload), a re-process by its owner, an
administrator's replay. Each run is announced through the outbox, in the transaction that records it."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import NotFound, RateLimited
from contracts.docs_api import DocumentRef, DocumentSummary, ReplayDocuments, ReplayResult
from contracts.documents import DOCUMENT_UPLOADED, DocumentUploaded, RunKind
from services.kit.audit import record_audit
from services.kit.bus import Ctx
from services.kit.security import Actor

from ..rows import DocumentRow
from ..tables import audit_log, documents, tasks
from .common import DocsDeps, now, owned, progress, user
from .views import summaries


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


async def reprocess_one(
    doc_id: UUID,
    actor: Actor | None,
    ctx: Ctx,
    deps: DocsDeps,
    *,
    any_owner: bool = False,
    audit_action: str = "document.reprocessed",
) -> DocumentRow:
    """A new run of the document: the current run's unfinished tasks are superseded, its status starts over,
    and the workers are told to skip the old run. An owner's re-runs are limited per hour; an
    administrator's replay (`any_owner`) and the service's own after a restore (no actor) are not."""
    async with deps.db.transaction() as s:
        if any_owner or actor is None:
            old = (
                await s.execute(select(documents.c.run_id).where(documents.c.id == doc_id).with_for_update())
            ).scalar_one_or_none()
            if old is None:
                raise NotFound("There is no such document.", {"id": str(doc_id)})
        else:
            old = (await owned(s, doc_id, actor.user_id, lock=True)).run_id
            await _within_rerun_limit(s, actor.user_id, deps)
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
        await record_audit(
            s, audit_log, ctx, audit_action, actor_id=actor.user_id if actor else None, target_id=doc_id
        )
    await deps.mark_superseded(old, "superseded")
    await progress(deps, row.owner_id, row.id, row.run_id, "queued", "re-processing")
    return row


async def reprocess_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DocumentSummary:
    actor = await user(ctx, deps)
    row = await reprocess_one(cmd.id, actor, ctx, deps)
    return (await summaries(deps, [row]))[0]


async def replay_documents(cmd: ReplayDocuments, ctx: Ctx, deps: DocsDeps) -> ReplayResult:
    actor = ctx.require_actor()  # access="admin" was checked by the service before this runs
    queued = missing = 0
    for doc_id in dict.fromkeys(cmd.ids):
        try:
            await reprocess_one(doc_id, actor, ctx, deps, any_owner=True)
            queued += 1
        except NotFound:
            missing += 1
    return ReplayResult(queued=queued, missing=missing)
