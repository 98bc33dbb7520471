"""Reading and editing documents: the list (built in `search`), the counts, the detail, a user's edits of
fields and title, and their answers to category suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, Forbidden, Invalid
from contracts.docs_api import (
    AccessRole,
    CountDocuments,
    DocumentCounts,
    DocumentDetail,
    DocumentOcr,
    DocumentPage,
    DocumentRef,
    DocumentSummary,
    EventsAllowed,
    EventsCheck,
    EventsGrant,
    ListDocuments,
    PageOcrPublic,
    PagePublic,
    StageProgress,
    UpdateDocument,
)
from contracts.documents import PdfMetadata
from services.kit.audit import record_audit
from services.kit.bus import Ctx

from ..access import Caller, acting, list_sources, readable, shared_sources, sharing_owners
from ..list_statements import LIST_STATEMENTS
from ..rows import AccessibleRow, DocumentRow, TaskRow
from ..tables import audit_log, document_categories, documents, pages, tasks
from . import search
from .categories import category_for_name
from .common import DocsDeps, document_for, now, ocr_progress_message, owned_category, promoted, user
from .views import fields_public, summary_of, task_public


async def list_documents(cmd: ListDocuments, ctx: Ctx, deps: DocsDeps) -> DocumentPage:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        shared = await list_sources(s, caller, cmd.scope)  # and how the list is planned
        statement, values = LIST_STATEMENTS.statement(cmd, caller, shared)  # search.list_statement's, reused
        rows = (await s.execute(statement, values)).all()
    return search.page_of(cmd, rows)


async def count_documents(cmd: CountDocuments, ctx: Ctx, deps: DocsDeps) -> DocumentCounts:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        shared = await shared_sources(s, caller) if cmd.scope != "mine" else None
        rows = (await s.execute(search.counts_statement(caller, cmd.scope, shared))).all()
    return search.counts_of(rows)


# A document's pages and tasks, built once (building a statement costs more CPU than running it here).
_PAGES_OF = select(pages).where(pages.c.document_id == bindparam("doc_id")).order_by(pages.c.number)
_TASKS_OF = (
    select(tasks)
    .where(tasks.c.document_id == bindparam("doc_id"))
    .order_by(tasks.c.created_at.desc(), tasks.c.id)
)


async def detail(deps: DocsDeps, doc_id: UUID, caller: Caller) -> DocumentDetail:
    async with acting(deps.db, caller) as s:
        row = await document_for(s, doc_id, caller, "viewer")
        page_rows = (await s.execute(_PAGES_OF, {"doc_id": doc_id})).all()
        base = await summary_of(s, row, row.access_role, caller)
        task_rows = (await s.execute(_TASKS_OF, {"doc_id": doc_id})).all()
    return detail_of(row, base, task_rows, [page_public(p) for p in page_rows])


def page_public(p: Any) -> PagePublic:
    return PagePublic(
        number=p.number,
        text=p.text,
        tables=p.tables,
        ocr=PageOcrPublic.model_validate(p.ocr) if p.ocr else None,
    )


def detail_of(
    row: DocumentRow,
    base: DocumentSummary,
    task_rows: Sequence[TaskRow],
    pages: list[PagePublic],
    model: type[DocumentDetail] = DocumentDetail,
    **extra: Any,
) -> DocumentDetail:
    """The detail of a document whose summary (as the caller sees it) is `base`."""
    return model(
        **base.model_dump(),
        pages=pages,
        metadata=PdfMetadata.model_validate(row.pdf_metadata) if row.pdf_metadata else None,
        needs_ocr=row.needs_ocr,
        fields=fields_public(row.fields),
        tasks=[task_public(t) for t in task_rows],
        preview_pages=row.preview_pages,
        # Suggestions name the owner's categories: theirs to accept or reject.
        pending_suggestions=(row.pending_suggestions or []) if base.role == "owner" else [],
        media_type=row.media_type,
        progress=ocr_progress(row),
        ocr=ocr_outcome(row, any(p.ocr for p in pages)),
        **extra,
    )


def ocr_progress(row: DocumentRow) -> StageProgress | None:
    if row.status != "ocr" or row.ocr_total is None:
        return None
    done = row.ocr_done or 0
    return StageProgress(
        stage="ocr", done=done, total=row.ocr_total, message=ocr_progress_message(done, row.ocr_total)
    )


def ocr_outcome(row: DocumentRow, pages_needed_ocr: bool) -> DocumentOcr | None:
    if not (pages_needed_ocr or row.ocr_reason or row.ocr_pages):
        return None
    return DocumentOcr(
        pages=row.ocr_pages,
        reason=row.ocr_reason or "",
        engine=row.ocr_engine or "",
        text_layer=row.text_layer_object is not None,
    )


async def get_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DocumentDetail:
    caller = await user(ctx, deps)
    return await detail(deps, cmd.id, caller)


async def events_grant(_: Empty, ctx: Ctx, deps: DocsDeps) -> EventsGrant:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        owners = list((await s.execute(sharing_owners(caller))).scalars())
    return EventsGrant(owner_id=caller.user_id, shared_owner_ids=owners)


async def events_check(cmd: EventsCheck, ctx: Ctx, deps: DocsDeps) -> EventsAllowed:
    """Which of these documents the caller may read now: the gateway forwards progress of others' documents
    only after asking (a revoked share stops the next message)."""
    caller = await user(ctx, deps)
    if not cmd.document_ids:
        return EventsAllowed(document_ids=[])
    async with acting(deps.db, caller) as s:
        ids = (
            await s.execute(
                select(documents.c.id).where(documents.c.id.in_(cmd.document_ids), readable(caller))
            )
        ).scalars()
        return EventsAllowed(document_ids=list(ids))


async def update_document(cmd: UpdateDocument, ctx: Ctx, deps: DocsDeps) -> DocumentDetail:
    caller = await user(ctx, deps)
    edits: dict[str, Any] = {name.value: None for name in cmd.clear}
    if cmd.title is not None:
        edits["title"] = cmd.title
    if cmd.fields is not None:
        edits.update(cmd.fields.model_dump(mode="json", exclude_none=True))
    if not edits and not (cmd.reject_categories or cmd.accept_suggestions or cmd.reject_suggestions):
        raise Invalid(
            "Send at least one of title, fields, clear, reject_categories, accept_suggestions or "
            "reject_suggestions."
        )
    async with acting(deps.db, caller, write=True) as s:
        need: AccessRole = "editor" if edits else "viewer"
        row = await document_for(s, cmd.id, caller, need, what="edit it", lock=True)
        if (cmd.accept_suggestions or cmd.reject_suggestions) and row.access_role != "owner":
            raise Forbidden("Only the document's owner answers its category suggestions.")
        if edits:
            fields = dict(row.fields or {})
            stamp = now().isoformat()
            for name, value in edits.items():
                fields[name] = {"value": value, "source": "user", "updated_at": stamp}
            await s.execute(
                update(documents)
                .where(documents.c.id == cmd.id)
                .values(fields=fields, updated_at=func.now(), **promoted(fields))
            )
            await record_audit(
                s,
                audit_log,
                ctx,
                "document.edited",
                actor_id=caller.user_id,
                target_id=cmd.id,
                fields=sorted(edits),
                role=row.access_role,
            )
        if cmd.reject_categories:
            await _reject_categories(s, ctx, caller, row, list(dict.fromkeys(cmd.reject_categories)))
        if cmd.accept_suggestions or cmd.reject_suggestions:
            await _decide_suggestions(s, ctx, caller, row, cmd.accept_suggestions, cmd.reject_suggestions)
    return await detail(deps, cmd.id, caller)


async def _decide_suggestions(
    s: AsyncSession, ctx: Ctx, caller: Caller, doc: AccessibleRow, accept: list[str], reject: list[str]
) -> None:
    """The user's answer to pending suggestions: accepted ones become (their own) categories, rejected ones never
    come back on this document."""
    pending = {n.lower(): n for n in doc.pending_suggestions or []}
    wanted = [" ".join(n.split()).lower() for n in [*accept, *reject]]
    unknown = [n for n in [*accept, *reject] if " ".join(n.split()).lower() not in pending]
    if unknown:
        raise Invalid(
            f"Not a pending suggestion on this document: {', '.join(unknown)}. "
            "Reload the document to see its current suggestions.",
            {"field": "accept_suggestions"},
        )
    if len(set(wanted)) != len(wanted):
        raise Invalid("A suggestion cannot be both accepted and rejected (or sent twice).")
    accepted = [pending[n] for n in wanted[: len(accept)]]
    rejected_now = wanted[len(accept) :]
    for name in accepted:
        cat_id = await category_for_name(s, doc.owner_id, name, create=True)
        link = document_categories.c
        await s.execute(
            pg_insert(document_categories)
            .values(document_id=doc.id, category_id=cat_id, source="user", owner_id=doc.owner_id)
            .on_conflict_do_update(
                index_elements=[link.document_id, link.category_id], set_={"source": "user"}
            )
        )
    rejected = list(doc.rejected_categories or [])
    rejected += [n for n in rejected_now if n not in rejected]
    left = [n for key, n in pending.items() if key not in set(wanted)]
    await s.execute(
        update(documents)
        .where(documents.c.id == doc.id)
        .values(pending_suggestions=left, rejected_categories=rejected, updated_at=func.now())
    )
    await record_audit(
        s,
        audit_log,
        ctx,
        "document.suggestions_decided",
        actor_id=caller.user_id,
        target_id=doc.id,
        accepted=accepted,
        rejected=[pending[n] for n in rejected_now],
    )


async def _reject_categories(
    s: AsyncSession, ctx: Ctx, caller: Caller, doc: AccessibleRow, cat_ids: list[UUID]
) -> None:
    """Take the caller's categories off the document; on their own document, also remember the names so no
    analysis suggests them here again (suggestions name the owner's categories)."""
    rejected = list(doc.rejected_categories or [])
    names = []
    for cat_id in cat_ids:
        cat = await owned_category(s, cat_id, caller.user_id)
        names.append(cat.name)
        if cat.name.lower() not in rejected:
            rejected.append(cat.name.lower())
    link = document_categories.c
    await s.execute(
        delete(document_categories).where(link.document_id == doc.id, link.category_id.in_(cat_ids))
    )
    if doc.access_role == "owner":
        await s.execute(
            update(documents)
            .where(documents.c.id == doc.id)
            .values(rejected_categories=rejected, updated_at=func.now())
        )
    await record_audit(
        s,
        audit_log,
        ctx,
        "document.categories_rejected",
        actor_id=caller.user_id,
        target_id=doc.id,
        categories=names,
    )
