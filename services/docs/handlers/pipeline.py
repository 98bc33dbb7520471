"""The pipeline's events, as the documents service records them: a run's task rows and the document's status.

Applied idempotently: a task row per (run, stage) remembers what was recorded, a redelivered event finds it
finished and changes nothing, and an event of a run that is no longer the document's current run only
updates its own task row. A document's status only moves forward (`STATUS_RANK`) within its current run.

The extraction and the analysis of a run come through separate durable consumers, so the analysis may be
recorded first. Neither order matters: each handler locks the document row, and the run becomes `ready`
only in whichever of the two finds the other one recorded (an analysis alone records the fields and
waits; the extraction then moves the run on to `ready` instead of `analyzing`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import UUID as UUID_TYPE
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.docs_api import PageOcrPublic, TaskStatus
from contracts.documents import (
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentFailed,
    DocumentOcrProgress,
    DocumentProcessing,
    DocumentStatus,
    ExtractionResult,
    PageText,
    Stage,
)
from services.kit.bus import Ctx

from ..access import as_system
from ..rows import EventDocumentRow, TaskRow
from ..tables import document_categories, documents, pages, tasks
from .categories import category_for_name
from .common import DocsDeps, now, ocr_progress_message, progress, promoted

# The order of a run's states; an event never moves a document backwards (redelivery, late events).
STATUS_RANK: dict[DocumentStatus, int] = {
    "queued": 0,
    "extracting": 1,
    "ocr": 2,
    "analyzing": 3,
    "ready": 4,
    "needs_ocr": 4,
    "failed": 4,
}
TERMINAL_TASK: tuple[TaskStatus, ...] = ("succeeded", "failed", "superseded")


# What an event reads of its document, locked (rows.EventDocumentRow).
EVENT_COLUMNS = [
    documents.c[name]
    for name in ("id", "owner_id", "filename", "run_id", "status", "fields", "rejected_categories")
]


async def _doc_for_event(s: AsyncSession, doc_id: UUID) -> EventDocumentRow | None:
    return (await s.execute(select(*EVENT_COLUMNS).where(documents.c.id == doc_id).with_for_update())).first()


async def _run_tasks(
    s: AsyncSession, doc: EventDocumentRow, run_id: UUID, stage: Stage
) -> tuple[TaskRow, bool]:
    """The (run, stage) task, locked (created when a worker's event arrives first), and whether the run's
    other stage is recorded as done: one statement for both when the task exists (call with the document
    row locked: _doc_for_event, so the two stages' events are recorded one after the other)."""
    t = tasks.c
    of_run = {r.stage: r for r in await s.execute(select(tasks).where(t.run_id == run_id).with_for_update())}
    other = of_run.get("extract" if stage == "analyze" else "analyze")
    other_done = other is not None and other.status == "succeeded"
    task = of_run.get(stage)
    if task is None:
        await s.execute(pg_insert(tasks).values(**_new_task(doc, run_id, stage)).on_conflict_do_nothing())
        task = (
            await s.execute(select(tasks).where(t.run_id == run_id, t.stage == stage).with_for_update())
        ).one()
    return task, other_done


def _new_task(doc: EventDocumentRow, run_id: UUID, stage: Stage) -> dict[str, Any]:
    """A (run, stage) task row that a worker's event creates (a run's first task is queue_run's)."""
    return {
        "id": uuid.uuid4(),
        "owner_id": doc.owner_id,
        "document_id": doc.id,
        "filename": doc.filename,
        "run_id": run_id,
        "stage": stage,
        "kind": "analyze" if stage == "analyze" else "extract",
        "status": "queued",
        "attempt": 0,
    }


def _duration_ms(started: datetime | None, finished: datetime | None) -> int | None:
    if started is None or finished is None:
        return None
    return max(0, int((finished - started).total_seconds() * 1000))


async def _task_succeeded(
    s: AsyncSession, task: TaskRow, ev: DocumentExtracted | DocumentAnalyzed, **values: Any
) -> None:
    """Record a worker's success on its (run, stage) task: attempt, worker, timing, and `values`."""
    await s.execute(
        update(tasks)
        .where(tasks.c.id == task.id)
        .values(
            status="succeeded",
            attempt=max(task.attempt, ev.attempt),
            worker=ev.worker[:200],
            started_at=ev.started_at,
            finished_at=ev.finished_at,
            error=None,
            reason=None,
            duration_ms=_duration_ms(ev.started_at, ev.finished_at),
            **values,
        )
    )


def _moves(doc: EventDocumentRow, run_id: UUID, status: DocumentStatus) -> bool:
    """Whether `status` moves the (locked) document forward within its current run: never backwards,
    never from an old run."""
    return doc.run_id == run_id and STATUS_RANK[status] > STATUS_RANK[doc.status]


async def _advance(
    s: AsyncSession, doc: EventDocumentRow, run_id: UUID, status: DocumentStatus, **values: Any
) -> bool:
    """Move the document forward within its current run (`_moves`)."""
    if not _moves(doc, run_id, status):
        return False
    await s.execute(
        update(documents)
        .where(documents.c.id == doc.id)
        .values(status=status, updated_at=func.now(), **values)
    )
    return True


async def on_processing(ev: DocumentProcessing, ctx: Ctx, deps: DocsDeps) -> None:
    status: DocumentStatus = "extracting" if ev.stage == "extract" else "analyzing"
    before = [earlier for earlier, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
    d, t = documents.c, tasks.c
    async with as_system(deps.db, "pipeline") as s:
        # The document moves forward within its current run (`_moves`), locked by this update when it does
        # (first, as every pipeline event locks the document before its tasks) ...
        owner = (
            await s.execute(
                update(documents)
                .where(d.id == ev.document_id, d.run_id == ev.run_id, d.status.in_(before))
                .values(status=status, updated_at=func.now())
                .returning(d.owner_id)
            )
        ).scalar()
        # ... and its (run, stage) task is running unless already finished: created so (from the document's
        # row; none if it is gone), or updated.
        running = pg_insert(tasks).from_select(
            ["id", "owner_id", "document_id", "filename", "run_id", "stage", "kind", "status", "attempt"]
            + ["worker", "started_at"],
            select(
                literal(uuid.uuid4(), UUID_TYPE),
                d.owner_id,
                d.id,
                d.filename,
                literal(ev.run_id, UUID_TYPE),
                literal(ev.stage),
                literal("analyze" if ev.stage == "analyze" else "extract"),
                literal("running"),
                literal(ev.attempt),
                literal(ev.worker[:200]),
                literal(ev.started_at, DateTime(timezone=True)),
            ).where(d.id == ev.document_id),
        )
        await s.execute(
            running.on_conflict_do_update(
                index_elements=[t.run_id, t.stage],
                set_={
                    "status": "running",
                    "attempt": func.greatest(t.attempt, running.excluded.attempt),
                    "worker": running.excluded.worker,
                    "started_at": running.excluded.started_at,
                },
                where=t.status.not_in(TERMINAL_TASK),
            )
        )
    if owner is not None:
        await progress(deps, owner, ev.document_id, ev.run_id, status)


async def on_ocr_progress(ev: DocumentOcrProgress, ctx: Ctx, deps: DocsDeps) -> None:
    """The text worker read another scanned page: the run is at `ocr`, with its page counts recorded for a
    reload, and the live progress goes out. A late one (the run is past OCR, or another run) changes nothing."""
    async with as_system(deps.db, "pipeline") as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None or doc.run_id != ev.run_id or STATUS_RANK[doc.status] > STATUS_RANK["ocr"]:
            return
        await s.execute(
            update(documents)
            .where(documents.c.id == doc.id)
            .values(status="ocr", ocr_done=ev.done, ocr_total=ev.total, updated_at=func.now())
        )
    await progress(
        deps,
        doc.owner_id,
        doc.id,
        ev.run_id,
        "ocr",
        ocr_progress_message(ev.done, ev.total),
        page=ev.done,
        pages=ev.total,
    )


def _page_ocr(page: PageText) -> dict[str, Any] | None:
    if page.ocr is None:
        return None
    info = PageOcrPublic(**page.ocr.model_dump(exclude={"words"}), word_count=len(page.ocr.words))
    return info.model_dump(mode="json")


async def on_extracted(ev: DocumentExtracted, ctx: Ctx, deps: DocsDeps) -> None:
    # The result is read before the transaction, not under the document's lock. Only the current run's
    # first recording needs it: for a deleted document, an old run or a redelivery a failed read is moot.
    result: ExtractionResult | None = None
    unreadable: Exception | None = None
    try:
        result = ExtractionResult.model_validate_json(await deps.blobs.read(ev.result_object))
    except Exception as exc:
        unreadable = exc
    async with as_system(deps.db, "pipeline") as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task, analysed = await _run_tasks(s, doc, ev.run_id, "extract")
        if task.status == "succeeded":
            return  # this run's result is already recorded
        current = doc.run_id == ev.run_id
        if current and result is None:
            assert unreadable is not None
            raise unreadable
        if (
            current
            and result is not None
            and (result.document_id != ev.document_id or result.run_id != ev.run_id)
        ):
            raise ValueError(f"{ev.result_object} belongs to another document or run")
        await _task_succeeded(s, task, ev)
        if result is None or not current:
            return
        await s.execute(delete(pages).where(pages.c.document_id == doc.id))
        if result.pages:
            await s.execute(
                insert(pages),
                [
                    {
                        "document_id": doc.id,
                        "owner_id": doc.owner_id,
                        "number": p.number,
                        "text": p.text,
                        "tables": p.tables,
                        "ocr": _page_ocr(p),
                    }
                    for p in result.pages
                ],
            )
        body = "\n\f".join(p.text for p in result.pages)
        status: DocumentStatus = "needs_ocr" if ev.needs_ocr else "ready" if analysed else "analyzing"
        moved = _moves(doc, ev.run_id, status)
        # Stored whatever the status: the analysis of this run may have been recorded first (two consumers).
        await s.execute(
            update(documents)
            .where(documents.c.id == doc.id)
            .values(
                page_count=result.page_count,
                needs_ocr=result.needs_ocr,
                body_text=body.replace("\x00", ""),
                preview_pages=ev.preview_pages,
                pdf_metadata=result.metadata.model_dump(mode="json"),
                pdf_object=ev.pdf_object,
                text_layer_object=ev.text_layer_object,
                ocr_pages=ev.ocr_pages,
                ocr_reason=ev.ocr_reason or None,
                ocr_engine=ev.ocr_engine or None,
                ocr_done=None,
                ocr_total=None,
                updated_at=func.now(),
                **({"status": status} if moved else {}),
            )
        )
    if moved:
        await progress(deps, doc.owner_id, doc.id, ev.run_id, status, ev.ocr_reason if ev.needs_ocr else "")


async def _apply_suggested_categories(
    s: AsyncSession, doc: EventDocumentRow, names: list[str], may_create: bool
) -> list[str]:
    """Assign the suggested categories; returns the names with no category, which wait for the user (the
    document's `pending_suggestions`) when the AI may not create one."""
    link = document_categories.c
    await s.execute(delete(document_categories).where(link.document_id == doc.id, link.source == "ai"))
    rejected = set(doc.rejected_categories or [])
    pending: list[str] = []
    for raw in names:
        name = " ".join(raw.split())[:80]
        if not name or name.lower() in rejected:
            continue
        cat_id = await category_for_name(s, doc.owner_id, name, create=may_create)
        if cat_id is not None:
            await s.execute(
                pg_insert(document_categories)
                .values(document_id=doc.id, category_id=cat_id, source="ai", owner_id=doc.owner_id)
                .on_conflict_do_nothing()
            )
        elif name.lower() not in {p.lower() for p in pending}:
            pending.append(name)
    return pending


async def on_analyzed(ev: DocumentAnalyzed, ctx: Ctx, deps: DocsDeps) -> None:
    st = deps.settings()
    async with as_system(deps.db, "pipeline") as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task, extracted = await _run_tasks(s, doc, ev.run_id, "analyze")
        if task.status == "succeeded":
            return
        await _task_succeeded(
            s,
            task,
            ev,
            provider=ev.provider,
            model=ev.model[:200],
            tokens_in=ev.tokens_in,
            tokens_out=ev.tokens_out,
        )
        if doc.run_id != ev.run_id:
            return
        # A new analysis replaces the model's previous answers; what a user typed stays.
        fields = {k: v for k, v in (doc.fields or {}).items() if v.get("source") == "user"}
        stamp = now().isoformat()
        for name, value in ev.fields.model_dump(mode="json", exclude={"suggested_categories"}).items():
            if value is None or name in fields:
                continue
            fields[name] = {
                "value": value,
                "source": "model",
                "provider": ev.provider,
                "model": ev.model,
                "task_id": str(task.id),
                "updated_at": stamp,
            }
        pending = await _apply_suggested_categories(
            s, doc, ev.fields.suggested_categories, st.ai_may_create_categories
        )
        # The AI worker reads the extraction from the stream, so its answer can be here before the extraction
        # is recorded; the document is ready (or needs OCR) once both are: on_extracted finishes it then.
        moved = extracted and _moves(doc, ev.run_id, "ready")
        await s.execute(
            update(documents)
            .where(documents.c.id == doc.id)
            .values(
                fields=fields,
                pending_suggestions=pending,
                updated_at=func.now(),
                **promoted(fields),
                **({"status": "ready"} if moved else {}),
            )
        )
    if moved:
        await progress(deps, doc.owner_id, doc.id, ev.run_id, "ready")


async def on_failed(ev: DocumentFailed, ctx: Ctx, deps: DocsDeps) -> None:
    async with as_system(deps.db, "pipeline") as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task, _ = await _run_tasks(s, doc, ev.run_id, ev.stage)
        if task.status in TERMINAL_TASK:
            return
        await s.execute(
            update(tasks)
            .where(tasks.c.id == task.id)
            .values(
                status="failed" if ev.final else "queued",
                attempt=max(task.attempt, ev.attempt),
                worker=ev.worker[:200] or task.worker,
                started_at=ev.started_at or task.started_at,
                finished_at=ev.finished_at if ev.final else None,
                error=ev.message,
                reason=ev.reason,
                duration_ms=_duration_ms(ev.started_at or task.started_at, ev.finished_at)
                if ev.final
                else None,
            )
        )
        moved = ev.final and await _advance(
            s, doc, ev.run_id, "failed", failure_reason=ev.reason, failure_message=ev.message
        )
    if moved:
        await progress(deps, doc.owner_id, doc.id, ev.run_id, "failed", ev.reason)
