"""Documents use cases as plain functions of a command, the dependencies and the context (no transport here).

Every query is scoped by the verified caller: another user's document, category or task is `NotFound`.
Pipeline events are applied idempotently: a task row per (run, stage) remembers what was recorded, a
redelivered event finds it finished and changes nothing, and an event of a run that is no longer the
document's current run only updates its own task row.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Date,
    Double,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from contracts import Conflict, Empty, Forbidden, Invalid, NotFound, TooLarge, Unavailable
from contracts.base import AtriumError
from contracts.docs_api import (
    COUNT_CAP,
    BulkAction,
    BulkItem,
    BulkResult,
    CategoryCreate,
    CategoryList,
    CategoryPublic,
    CategoryRefPublic,
    CategoryUpdate,
    CreateDocument,
    DayStats,
    DocumentDetail,
    DocumentFilter,
    DocumentPage,
    DocumentRef,
    DocumentSummary,
    DownloadTicket,
    EventsGrant,
    FieldValue,
    ListDocuments,
    ListTasks,
    PagePublic,
    PreviewRef,
    PreviewTicket,
    ProviderStats,
    ReplayDocuments,
    ReplayResult,
    TaskPage,
    TaskPublic,
    TaskRef,
    TaskStats,
    TaskStatsQuery,
    UpdateDocument,
    UploadPolicy,
    UploadResult,
)
from contracts.documents import (
    DOCUMENT_UPLOADED,
    PREVIEW_MAX_PAGES,
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentFailed,
    DocumentProcessing,
    DocumentProgress,
    DocumentsSettingsStored,
    DocumentUploaded,
    ExtractionResult,
    PdfMetadata,
    PreviewsRendered,
    RenderPreviews,
    preview_object_name,
    result_object_name,
)
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.security import Actor

from .names import sanitize_filename
from .tables import SEARCH_CONFIG, audit_log, categories, document_categories, documents, outbox, pages, tasks

log = logging.getLogger("atrium.docs")

MB = 1024 * 1024
BULK_FILTER_LIMIT = 1000
RANK_CANDIDATES = 500
SNIPPET_TEXT_CHARS = 20_000  # of the matching page (a page with more text is rare: tables, hostile files)
# The order of a run's states; an event never moves a document backwards (redelivery, late events).
STATUS_RANK = {"queued": 0, "extracting": 1, "analyzing": 2, "ready": 3, "needs_ocr": 3, "failed": 3}
TERMINAL_TASK = ("succeeded", "failed", "superseded")
# Fields the AI fills and a user may edit; some are also columns for filtering and sorting.
PROMOTED = ("document_type", "title", "document_date", "sender", "total_amount", "currency")


class Blobs:
    """The Object Store as the handlers need it (implemented over NATS in app.py)."""

    async def info(self, name: str) -> tuple[int, str]:  # (size, sha256 hex); NotFound if absent
        raise NotImplementedError

    async def read(self, name: str) -> bytes:
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        raise NotImplementedError


AccessCheck = Callable[[Actor], Awaitable[None]]
ProgressSink = Callable[[UUID, DocumentProgress], Awaitable[None]]


@dataclass
class DocsDeps:
    db: Database
    blobs: Blobs
    settings: Callable[[], DocumentsSettingsStored]
    check_access: AccessCheck
    wake_relay: Callable[[], None]
    publish_progress: ProgressSink
    # False records documents and runs without announcing them to the workers (bulk imports, the list
    # benchmark's generator, tests that play the workers' part themselves).
    queue_work: bool = True
    # Asks the text worker to render a missing page preview, with the owner's token.
    render_previews: Callable[[RenderPreviews, str], Awaitable[PreviewsRendered]] = field(
        default=lambda cmd, token: _no_preview_renderer()
    )


async def _no_preview_renderer() -> PreviewsRendered:
    raise Unavailable("Page previews need the text worker, and this documents service has none to ask.")


async def _user(ctx: Ctx, deps: DocsDeps) -> Actor:
    actor = ctx.require_actor()
    await deps.check_access(actor)
    return actor


def _now() -> datetime:
    return datetime.now(UTC)


async def _audit(
    s: Any, ctx: Ctx, action: str, actor: Actor | None, target: UUID | None, **details: Any
) -> None:
    await s.execute(
        insert(audit_log).values(
            id=uuid.uuid4(),
            action=action,
            actor_id=actor.user_id if actor else None,
            target_id=target,
            ip=ctx.client_ip or None,
            request_id=ctx.request_id,
            details=details,
        )
    )


async def _progress(
    deps: DocsDeps, owner: UUID, doc_id: UUID, run_id: UUID, status: str, message: str = ""
) -> None:
    stage = "analyze" if status in ("analyzing", "ready") else "extract"
    try:
        await deps.publish_progress(
            owner,
            DocumentProgress(document_id=doc_id, run_id=run_id, stage=stage, status=status, message=message),
        )
    except Exception as exc:  # progress is fire-and-forget; the API always has the current state
        log.warning("progress publish failed: %r", exc)


# ---- upload -------------------------------------------------------------------------------------


async def _usage(s: Any, owner: UUID) -> tuple[int, int]:
    row = (
        await s.execute(
            select(func.count(), func.coalesce(func.sum(documents.c.size), 0)).where(
                documents.c.owner_id == owner
            )
        )
    ).one()
    return int(row[0]), int(row[1])


def _quota_errors(settings: DocumentsSettingsStored, count: int, used: int, incoming: int) -> None:
    if settings.quota_documents_per_user is not None and count + 1 > settings.quota_documents_per_user:
        raise Conflict(
            f"You have reached the limit of {settings.quota_documents_per_user} documents per user "
            "(quota_documents_per_user); delete some documents or ask an administrator.",
            {"limit": "quota_documents_per_user", "value": settings.quota_documents_per_user},
        )
    if (
        settings.quota_storage_mb_per_user is not None
        and used + incoming > settings.quota_storage_mb_per_user * MB
    ):
        raise TooLarge(
            f"This upload would exceed your storage quota of {settings.quota_storage_mb_per_user} MB "
            "(quota_storage_mb_per_user); delete some documents or ask an administrator.",
            {
                "limit": "quota_storage_mb_per_user",
                "value": settings.quota_storage_mb_per_user,
                "used_bytes": used,
            },
        )


async def upload_policy(_: Empty, ctx: Ctx, deps: DocsDeps) -> UploadPolicy:
    actor = await _user(ctx, deps)
    st = deps.settings()
    async with deps.db.session() as s:
        count, used = await _usage(s, actor.user_id)
    _quota_errors(st, count, used, 1 if st.quota_storage_mb_per_user is not None else 0)
    return UploadPolicy(
        max_file_bytes=st.max_upload_mb * MB,
        storage_left_bytes=None
        if st.quota_storage_mb_per_user is None
        else st.quota_storage_mb_per_user * MB - used,
        documents_left=None if st.quota_documents_per_user is None else st.quota_documents_per_user - count,
    )


def _uploaded_event(row: Any, kind: str) -> DocumentUploaded:
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


async def _queue_run(s: Any, row: Any, kind: str, deps: DocsDeps) -> None:
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
    if not deps.queue_work:
        return
    event = _uploaded_event(row, kind)
    await s.execute(
        insert(outbox).values(
            subject=DOCUMENT_UPLOADED.subject,
            msg_id=f"{row.id}:{row.run_id}",
            payload=event.model_dump(mode="json"),
        )
    )


async def create_document(cmd: CreateDocument, ctx: Ctx, deps: DocsDeps) -> UploadResult:
    actor = await _user(ctx, deps)
    object_name = str(cmd.object_name)
    size, sha = await deps.blobs.info(object_name)
    filename = sanitize_filename(cmd.filename)
    st = deps.settings()
    keep_blob = False  # a repeated create of a recorded upload must not delete the recorded file
    try:
        async with deps.db.transaction() as s:
            # One upload per owner at a time past this point, so quotas and duplicate checks cannot race.
            await s.execute(select(func.pg_advisory_xact_lock(func.hashtext(str(actor.user_id)))))
            count, used = await _usage(s, actor.user_id)
            _quota_errors(st, count, used, size)
            first = (
                await s.execute(
                    select(documents.c.id, documents.c.filename)
                    .where(
                        documents.c.owner_id == actor.user_id,
                        documents.c.sha256 == sha,
                        documents.c.duplicate_of.is_(None),
                    )
                    .order_by(documents.c.created_at)
                    .limit(1)
                )
            ).first()
            if first is not None and st.duplicate_policy == "reject":
                raise Conflict(
                    f"You already uploaded this file as “{first.filename}” (document {first.id}).",
                    {"existing_document_id": str(first.id), "existing_filename": first.filename},
                )
            try:
                row = (
                    await s.execute(
                        insert(documents)
                        .values(
                            id=cmd.object_name,
                            owner_id=actor.user_id,
                            filename=filename,
                            object_name=object_name,
                            size=size,
                            sha256=sha,
                            status="queued",
                            run_id=uuid.uuid4(),
                            duplicate_of=first.id if first is not None else None,
                        )
                        .returning(documents)
                    )
                ).one()
            except IntegrityError:
                keep_blob = True
                raise Conflict("This upload was already recorded.") from None
            await _queue_run(s, row, "extract", deps)
            await _audit(s, ctx, "document.uploaded", actor, row.id, filename=filename, size=size)
    except AtriumError:
        if not keep_blob:
            await deps.blobs.delete(object_name)
        raise
    deps.wake_relay()
    await _progress(deps, row.owner_id, row.id, row.run_id, "queued")
    summary = (await _summaries(deps, [row]))[0]
    return UploadResult(document=summary, duplicate=first is not None)


async def relay_outbox(
    db: Database, publish: Callable[[str, dict[str, Any], str], Awaitable[None]], batch: int = 100
) -> int:
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
    cutoff = _now() - timedelta(days=settings.task_retention_days)
    async with db.transaction() as s:
        gone = await s.execute(
            delete(tasks).where(tasks.c.created_at < cutoff, tasks.c.status.in_(TERMINAL_TASK))
        )
        await s.execute(delete(outbox).where(outbox.c.sent_at < _now() - timedelta(days=1)))
    return gone.rowcount or 0


# ---- reading documents --------------------------------------------------------------------------------


def _fields_public(raw: dict[str, Any]) -> dict[str, FieldValue]:
    return {k: FieldValue.model_validate(v) for k, v in (raw or {}).items()}


async def _categories_of(s: Any, ids: Sequence[UUID]) -> dict[UUID, list[CategoryRefPublic]]:
    out: dict[UUID, list[CategoryRefPublic]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await s.execute(
        select(
            document_categories.c.document_id,
            categories.c.id,
            categories.c.name,
            document_categories.c.source,
        )
        .join(categories, categories.c.id == document_categories.c.category_id)
        .where(document_categories.c.document_id.in_(list(ids)))
        .order_by(func.lower(categories.c.name))
    )
    for r in rows:
        out[r.document_id].append(CategoryRefPublic(id=r.id, name=r.name, source=r.source))
    return out


def _summary(
    row: Any, cats: list[CategoryRefPublic], rank: float | None = None, snippet: str | None = None
) -> DocumentSummary:
    return DocumentSummary(
        id=row.id,
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        status=row.status,
        failure_reason=row.failure_reason,
        failure_message=row.failure_message,
        duplicate_of=row.duplicate_of,
        page_count=row.page_count,
        document_type=row.document_type,
        title=row.title,
        document_date=row.document_date,
        sender=row.sender,
        total_amount=row.total_amount,
        currency=row.currency,
        categories=cats,
        uploaded_at=row.created_at,
        updated_at=row.updated_at,
        run_id=row.run_id,
        rank=rank,
        snippet=snippet,
    )


async def _summaries(deps: DocsDeps, rows: Sequence[Any]) -> list[DocumentSummary]:
    async with deps.db.session() as s:
        cats = await _categories_of(s, [r.id for r in rows])
    return [_summary(r, cats[r.id]) for r in rows]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(value: str) -> str:
    return "%" + _escape_like(value) + "%"


def _prefix(value: str) -> str:
    return _escape_like(value) + "%"


_REGCONFIG = literal_column(f"'{SEARCH_CONFIG}'::regconfig")


def _tsquery(q: str | None) -> Any:
    return func.websearch_to_tsquery(_REGCONFIG, q) if q else None


def _query_text(f: DocumentFilter) -> str | None:
    return f.q.strip() if f.q and f.q.strip() else None


_DOCUMENT_DATE = func.coalesce(documents.c.document_date, literal_column("DATE '0001-01-01'"))


def filter_conditions(f: DocumentFilter, owner: UUID) -> list[Any]:
    d = documents.c
    conds: list[Any] = [d.owner_id == owner]
    if f.status:
        conds.append(d.status.in_(f.status))
    if f.document_type:
        conds.append(d.document_type.in_(f.document_type))
    link = document_categories.c
    if f.category_any:
        conds.append(d.id.in_(select(link.document_id).where(link.category_id.in_(f.category_any))))
    for category_id in dict.fromkeys(f.category_all):
        # One hashed semi-join per category (measured faster than grouping all links and counting).
        conds.append(d.id.in_(select(link.document_id).where(link.category_id == category_id)))
    if f.sender:
        # "Starts with", ignoring case: served by the (owner, lower(sender)) index.
        conds.append(func.lower(d.sender).like(_prefix(f.sender.strip().lower()), escape="\\"))
    if f.date_from or f.date_to:
        # Written as the sort expression so the (owner, document date) index serves the range.
        when = _DOCUMENT_DATE
        conds.append(d.document_date.isnot(None))
        if f.date_from:
            conds.append(when >= f.date_from)
        if f.date_to:
            conds.append(when <= f.date_to)
    if f.uploaded_from:
        conds.append(d.created_at >= f.uploaded_from)
    if f.uploaded_to:
        conds.append(d.created_at <= f.uploaded_to)
    if f.duplicate is not None:
        conds.append(d.duplicate_of.isnot(None) if f.duplicate else d.duplicate_of.is_(None))
    q = _query_text(f)
    if q:
        conds.append(d.search.op("@@")(_tsquery(q)))
    return conds


def _sort_expression(sort: str, q: str | None, ranked: Any = documents) -> Any:
    """The sort key; relevance ranks the rows of `ranked` (the candidates), every other key is indexed."""
    d = documents.c
    if sort == "relevance":
        if not q:
            raise Invalid(
                "Sorting by relevance needs a search text (q).", [{"field": "sort", "message": "needs q"}]
            )
        return cast(func.ts_rank(ranked.c.rank_vector, _tsquery(q)), Double)
    return {
        "uploaded_at": d.created_at,
        "document_date": _DOCUMENT_DATE,
        "title": func.lower(func.coalesce(d.title, d.filename)),
        "filename": func.lower(d.filename),
        "size": d.size,
        "status": d.status,
    }[sort]


def _encode_cursor(sort: str, order: str, q: str | None, value: Any, row_id: UUID) -> str:
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps([sort, order, q or "", value, str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, order: str, q: str | None) -> tuple[Any, UUID]:
    try:
        c_sort, c_order, c_q, value, row_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        if (c_sort, c_order, c_q) != (sort, order, q or ""):
            raise ValueError("cursor of another query")
        parsed: Any = {
            "uploaded_at": datetime.fromisoformat,
            "document_date": date.fromisoformat,
            "relevance": float,
            "size": int,
        }.get(sort, str)(value)
        return parsed, UUID(row_id)
    except Exception:
        raise Invalid(
            "The cursor is not valid for this query; start again without it.",
            [{"field": "cursor", "message": "invalid"}],
        ) from None


def _snippet(raw: str | None) -> str | None:
    if not raw:
        return None
    return html.escape(raw).replace("\x02", "<mark>").replace("\x03", "</mark>")


# What a list row shows (`_summary`): no text, vector or JSON (AI fields, PDF metadata) is read for a page.
SUMMARY_COLUMNS = (
    "id",
    "filename",
    "size",
    "sha256",
    "status",
    "failure_reason",
    "failure_message",
    "duplicate_of",
    "page_count",
    "document_type",
    "title",
    "document_date",
    "sender",
    "total_amount",
    "currency",
    "created_at",
    "updated_at",
    "run_id",
)


def _page_source(cmd: ListDocuments, conds: list[Any]) -> tuple[Any, list[Any]]:
    """What a page is cut from, and the conditions still to apply there."""
    if cmd.sort != "relevance":
        return documents, list(conds)
    # Ranking reads each candidate's whole tsvector, so only the newest RANK_CANDIDATES matches are ranked;
    # they are picked and ranked in one pass (the page is cut from them with no second look at the table).
    d = documents.c
    wanted = [d[name] for name in SUMMARY_COLUMNS] + [d.rank_vector]
    newest = select(*wanted).where(*conds).order_by(d.created_at.desc(), d.id.desc()).limit(RANK_CANDIDATES)
    return newest.subquery("candidates"), []


def _first_matching_page(doc_id: Any, q: str) -> Any:
    """The text a search snippet is cut from: the document's first page that matches. Headlining costs in
    proportion to the text (about 17 ms per 100,000 characters), so never the whole document; a match only
    in the title, sender or filename has no such page, and the title or filename is headlined instead."""
    pg = pages.c
    return (
        select(func.left(pg.text, SNIPPET_TEXT_CHARS))
        .where(pg.document_id == doc_id, pg.search.op("@@")(_tsquery(q)))
        .order_by(pg.number)
        .limit(1)
        .scalar_subquery()
    )


async def list_documents(cmd: ListDocuments, ctx: Ctx, deps: DocsDeps) -> DocumentPage:
    actor = await _user(ctx, deps)
    q = _query_text(cmd)
    conds = filter_conditions(cmd, actor.user_id)
    source, page_conds = _page_source(cmd, conds)
    c = source.c
    key = _sort_expression(cmd.sort, q, source)
    if cmd.cursor:
        value, after = _decode_cursor(cmd.cursor, cmd.sort, cmd.order, q)
        pair, bound = tuple_(key, c.id), tuple_(literal(value), literal(after))
        page_conds.append(pair < bound if cmd.order == "desc" else pair > bound)
    ordering = [key.desc(), c.id.desc()] if cmd.order == "desc" else [key.asc(), c.id.asc()]
    shown = [c[name] for name in SUMMARY_COLUMNS]
    page = (
        select(*shown, key.label("sort_key"))
        .select_from(source)
        .where(*page_conds)
        .order_by(*ordering)
        .limit(cmd.limit + 1)
        .subquery("page")
    )
    p = page.c
    # Counting stops past the cap: an exact count of 100,000 matches costs more than the page itself.
    capped = select(documents.c.id).where(*conds).limit(COUNT_CAP + 1).subquery("matches")
    counted = select(func.count().label("total")).select_from(capped).subquery("counted")
    link = document_categories.c
    category_refs = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(categories.c.id, categories.c.name, link.source),
                    func.lower(categories.c.name),
                )
            )
        )
        .join_from(document_categories, categories, categories.c.id == link.category_id)
        .where(link.document_id == p.id)
        .scalar_subquery()
    )
    snippet = (
        func.ts_headline(
            _REGCONFIG,
            func.coalesce(_first_matching_page(p.id, q), p.title, p.filename),
            _tsquery(q),
            "StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=10, MaxFragments=2",
        )
        if q
        else null()
    )
    out_order = [p.sort_key.desc(), p.id.desc()] if cmd.order == "desc" else [p.sort_key.asc(), p.id.asc()]
    # One statement (page, capped count, categories, snippets of the page's rows only): one round trip.
    stmt = (
        select(
            counted.c.total,
            *[p[col.name] for col in shown],
            p.sort_key,
            type_coerce(category_refs, JSON).label("category_refs"),
            snippet.label("snippet"),
        )
        .select_from(counted.outerjoin(page, true()))
        .order_by(*out_order)
    )
    async with deps.db.session() as s:
        # A prepared statement switches to a generic plan after five runs, and no single plan fits both an owner
        # with 10 and one with 100,000 documents, or a rare and a common word: plan this one for its values.
        await s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        result = (await s.execute(stmt)).all()
    total = result[0].total
    rows = [r for r in result if r.id is not None]
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    items = [
        _summary(
            r,
            [CategoryRefPublic(id=i, name=n, source=src) for i, n, src in r.category_refs or []],
            rank=r.sort_key if cmd.sort == "relevance" else None,
            snippet=_snippet(r.snippet),
        )
        for r in rows
    ]
    next_cursor = (
        _encode_cursor(cmd.sort, cmd.order, q, rows[-1].sort_key, rows[-1].id) if more and rows else None
    )
    return DocumentPage(
        items=items, total=min(total, COUNT_CAP), total_exact=total <= COUNT_CAP, next_cursor=next_cursor
    )


async def _owned(s: Any, doc_id: UUID, owner: UUID, *, lock: bool = False) -> Any:
    stmt = select(documents).where(documents.c.id == doc_id, documents.c.owner_id == owner)
    if lock:
        stmt = stmt.with_for_update()
    row = (await s.execute(stmt)).first()
    if row is None:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    return row


def _task_public(r: Any, show_owner: bool = False) -> TaskPublic:
    return TaskPublic(
        id=r.id,
        document_id=r.document_id,
        filename=r.filename,
        run_id=r.run_id,
        kind=r.kind,
        status=r.status,
        attempt=r.attempt,
        worker=r.worker,
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_ms=r.duration_ms,
        error=r.error,
        reason=r.reason,
        provider=r.provider,
        model=r.model,
        tokens_in=r.tokens_in,
        tokens_out=r.tokens_out,
        owner_id=r.owner_id if show_owner else None,
    )


async def _detail(deps: DocsDeps, doc_id: UUID, owner: UUID) -> DocumentDetail:
    async with deps.db.session() as s:
        row = await _owned(s, doc_id, owner)
        page_rows = (
            await s.execute(select(pages).where(pages.c.document_id == doc_id).order_by(pages.c.number))
        ).all()
        cats = await _categories_of(s, [doc_id])
        task_rows = (
            await s.execute(
                select(tasks)
                .where(tasks.c.document_id == doc_id)
                .order_by(tasks.c.created_at.desc(), tasks.c.id)
            )
        ).all()
    base = _summary(row, cats[doc_id]).model_dump()
    return DocumentDetail(
        **base,
        pages=[PagePublic(number=p.number, text=p.text, tables=p.tables) for p in page_rows],
        metadata=PdfMetadata.model_validate(row.pdf_metadata) if row.pdf_metadata else None,
        needs_ocr=row.needs_ocr,
        fields=_fields_public(row.fields),
        tasks=[_task_public(t) for t in task_rows],
        preview_pages=row.preview_pages,
        pending_suggestions=row.pending_suggestions or [],
    )


async def get_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DocumentDetail:
    actor = await _user(ctx, deps)
    return await _detail(deps, cmd.id, actor.user_id)


def _promoted(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PROMOTED:
        value = (fields.get(name) or {}).get("value")
        if value is not None and name == "document_date":
            value = date.fromisoformat(value)
        elif value is not None and name == "total_amount":
            value = Decimal(str(value))
        out[name] = value
    return out


async def update_document(cmd: UpdateDocument, ctx: Ctx, deps: DocsDeps) -> DocumentDetail:
    actor = await _user(ctx, deps)
    edits: dict[str, Any] = {name: None for name in cmd.clear}
    if cmd.title is not None:
        edits["title"] = cmd.title
    if cmd.fields is not None:
        edits.update(cmd.fields.model_dump(mode="json", exclude_none=True))
    if not edits and not (cmd.reject_categories or cmd.accept_suggestions or cmd.reject_suggestions):
        raise Invalid(
            "Send at least one of title, fields, clear, reject_categories, accept_suggestions or "
            "reject_suggestions."
        )
    async with deps.db.transaction() as s:
        row = await _owned(s, cmd.id, actor.user_id, lock=True)
        if edits:
            fields = dict(row.fields or {})
            stamp = _now().isoformat()
            for name, value in edits.items():
                fields[name] = {"value": value, "source": "user", "updated_at": stamp}
            await s.execute(
                update(documents)
                .where(documents.c.id == cmd.id)
                .values(fields=fields, updated_at=func.now(), **_promoted(fields))
            )
            await _audit(s, ctx, "document.edited", actor, cmd.id, fields=sorted(edits))
        if cmd.reject_categories:
            await _reject_categories(s, ctx, actor, row, list(dict.fromkeys(cmd.reject_categories)))
        if cmd.accept_suggestions or cmd.reject_suggestions:
            await _decide_suggestions(s, ctx, actor, row, cmd.accept_suggestions, cmd.reject_suggestions)
    return await _detail(deps, cmd.id, actor.user_id)


async def _decide_suggestions(
    s: Any, ctx: Ctx, actor: Actor, doc: Any, accept: list[str], reject: list[str]
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
        cat_id = await _category_for_name(s, doc.owner_id, name, create=True)
        link = document_categories.c
        await s.execute(
            pg_insert(document_categories)
            .values(document_id=doc.id, category_id=cat_id, source="user")
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
    await _audit(
        s,
        ctx,
        "document.suggestions_decided",
        actor,
        doc.id,
        accepted=accepted,
        rejected=[pending[n] for n in rejected_now],
    )


async def _reject_categories(s: Any, ctx: Ctx, actor: Actor, doc: Any, cat_ids: list[UUID]) -> None:
    """Take the categories off the document and remember their names so no analysis suggests them here again."""
    rejected = list(doc.rejected_categories or [])
    names = []
    for cat_id in cat_ids:
        cat = await _owned_category(s, cat_id, actor.user_id)
        names.append(cat.name)
        if cat.name.lower() not in rejected:
            rejected.append(cat.name.lower())
    link = document_categories.c
    await s.execute(
        delete(document_categories).where(link.document_id == doc.id, link.category_id.in_(cat_ids))
    )
    await s.execute(
        update(documents)
        .where(documents.c.id == doc.id)
        .values(rejected_categories=rejected, updated_at=func.now())
    )
    await _audit(s, ctx, "document.categories_rejected", actor, doc.id, categories=names)


async def _result_objects(s: Any, doc_id: UUID, page_count: int | None) -> list[str]:
    runs = (
        await s.execute(select(func.distinct(tasks.c.run_id)).where(tasks.c.document_id == doc_id))
    ).scalars()
    names = [result_object_name(doc_id, r) for r in runs]
    # Previews of every run that got through extraction (same file, so the current page count applies).
    extracted = (
        await s.execute(
            select(tasks.c.run_id).where(
                tasks.c.document_id == doc_id, tasks.c.stage == "extract", tasks.c.status == "succeeded"
            )
        )
    ).scalars()
    pages = range(1, min(page_count or 0, PREVIEW_MAX_PAGES) + 1)
    return names + [preview_object_name(doc_id, r, n) for r in extracted for n in pages]


async def _delete_one(doc_id: UUID, actor: Actor, ctx: Ctx, deps: DocsDeps) -> None:
    async with deps.db.transaction() as s:
        row = await _owned(s, doc_id, actor.user_id, lock=True)
        results = await _result_objects(s, doc_id, row.page_count)
        # Blob first: if the store is away the request fails and the row stays, so nothing is orphaned silently.
        await deps.blobs.delete(row.object_name)
        for name in results:
            await deps.blobs.delete(name)
        await s.execute(delete(documents).where(documents.c.id == doc_id))
        await _audit(s, ctx, "document.deleted", actor, doc_id, filename=row.filename)


async def delete_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    actor = await _user(ctx, deps)
    await _delete_one(cmd.id, actor, ctx, deps)
    return Empty()


async def download_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DownloadTicket:
    actor = await _user(ctx, deps)
    async with deps.db.transaction() as s:
        row = await _owned(s, cmd.id, actor.user_id)
        await _audit(s, ctx, "document.downloaded", actor, cmd.id, filename=row.filename)
    return DownloadTicket(object_name=row.object_name, filename=row.filename, size=row.size)


async def preview_page(cmd: PreviewRef, ctx: Ctx, deps: DocsDeps) -> PreviewTicket:
    """A page's preview, rendered by the text worker the first time anyone asks for it (with the pages
    around it). Not audited like a download: the detail page reads every preview on each visit."""
    actor = await _user(ctx, deps)
    async with deps.db.session() as s:
        row = await _owned(s, cmd.document_id, actor.user_id)
    if cmd.page > row.preview_pages:
        raise NotFound("This page has no preview.", {"page": cmd.page})
    name = preview_object_name(row.id, row.run_id, cmd.page)
    try:
        size, _ = await deps.blobs.info(name)
        return PreviewTicket(object_name=name, size=size)
    except NotFound:
        pass
    rendered = await deps.render_previews(
        RenderPreviews(
            document_id=row.id,
            owner_id=row.owner_id,
            run_id=row.run_id,
            object_name=row.object_name,
            page_count=row.page_count or cmd.page,
            page=cmd.page,
        ),
        actor.token,
    )
    if cmd.page not in rendered.pages:  # pdfium cannot draw this page
        raise NotFound("This page has no preview: it could not be rendered.", {"page": cmd.page})
    size, _ = await deps.blobs.info(name)
    return PreviewTicket(object_name=name, size=size)


async def _reprocess_one(
    doc_id: UUID, actor: Actor, deps: DocsDeps, ctx: Ctx, *, any_owner: bool = False
) -> Any:
    async with deps.db.transaction() as s:
        if any_owner:  # an administrator's replay
            if (
                await s.execute(select(documents.c.id).where(documents.c.id == doc_id).with_for_update())
            ).first() is None:
                raise NotFound("There is no such document.", {"id": str(doc_id)})
        else:
            await _owned(s, doc_id, actor.user_id, lock=True)
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
                    updated_at=func.now(),
                )
                .returning(documents)
            )
        ).one()
        await _queue_run(s, row, "reprocess", deps)
        await _audit(s, ctx, "document.reprocessed", actor, doc_id)
    deps.wake_relay()
    await _progress(deps, row.owner_id, row.id, row.run_id, "queued", "re-processing")
    return row


async def reprocess_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DocumentSummary:
    actor = await _user(ctx, deps)
    row = await _reprocess_one(cmd.id, actor, deps, ctx)
    return (await _summaries(deps, [row]))[0]


async def replay_documents(cmd: ReplayDocuments, ctx: Ctx, deps: DocsDeps) -> ReplayResult:
    actor = ctx.require_actor()  # access="admin" was checked by the service before this runs
    queued = missing = 0
    for doc_id in dict.fromkeys(cmd.ids):
        try:
            await _reprocess_one(doc_id, actor, deps, ctx, any_owner=True)
            queued += 1
        except NotFound:
            missing += 1
    return ReplayResult(queued=queued, missing=missing)


async def _owned_category(s: Any, cat_id: UUID, owner: UUID) -> Any:
    row = (
        await s.execute(select(categories).where(categories.c.id == cat_id, categories.c.owner_id == owner))
    ).first()
    if row is None:
        raise NotFound("There is no such category.", {"id": str(cat_id)})
    return row


async def bulk(cmd: BulkAction, ctx: Ctx, deps: DocsDeps) -> BulkResult:
    actor = await _user(ctx, deps)
    if cmd.ids and cmd.filter is not None:
        raise Invalid("Send either ids or filter, not both.")
    if cmd.action in ("assign_category", "remove_category") and cmd.category_id is None:
        raise Invalid(f"{cmd.action} needs category_id.", [{"field": "category_id", "message": "required"}])
    async with deps.db.session() as s:
        if cmd.category_id is not None:
            await _owned_category(s, cmd.category_id, actor.user_id)
        if cmd.filter is not None:
            ids = list(
                (
                    await s.execute(
                        select(documents.c.id)
                        .where(*filter_conditions(cmd.filter, actor.user_id))
                        .order_by(documents.c.created_at)
                        .limit(BULK_FILTER_LIMIT)
                    )
                ).scalars()
            )
        elif cmd.ids:
            ids = list(dict.fromkeys(cmd.ids))
        else:
            raise Invalid("Send ids or a filter to choose the documents.")
    results: list[BulkItem] = []
    for doc_id in ids:
        try:
            if cmd.action == "delete":
                await _delete_one(doc_id, actor, ctx, deps)
            elif cmd.action == "reprocess":
                await _reprocess_one(doc_id, actor, deps, ctx)
            else:
                async with deps.db.transaction() as s:
                    await _owned(s, doc_id, actor.user_id)
                    link = document_categories.c
                    if cmd.action == "assign_category":
                        await s.execute(
                            pg_insert(document_categories)
                            .values(document_id=doc_id, category_id=cmd.category_id, source="user")
                            .on_conflict_do_update(
                                index_elements=[link.document_id, link.category_id], set_={"source": "user"}
                            )
                        )
                    else:
                        await s.execute(
                            delete(document_categories).where(
                                link.document_id == doc_id, link.category_id == cmd.category_id
                            )
                        )
            results.append(BulkItem(id=doc_id, ok=True))
        except AtriumError as err:
            results.append(BulkItem(id=doc_id, ok=False, code=err.code.value, message=err.message))
    ok = sum(r.ok for r in results)
    return BulkResult(action=cmd.action, results=results, succeeded=ok, failed=len(results) - ok)


# ---- categories --------------------------------------------------------------------------------------------


def _category_public(row: Any, count: int = 0) -> CategoryPublic:
    return CategoryPublic(id=row.id, name=row.name, document_count=count, created_at=row.created_at)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Invalid("A category needs a name.", [{"field": "name", "message": "empty"}])
    return cleaned


async def list_categories(_: Empty, ctx: Ctx, deps: DocsDeps) -> CategoryList:
    actor = await _user(ctx, deps)
    counts = (
        select(document_categories.c.category_id, func.count().label("n"))
        .group_by(document_categories.c.category_id)
        .subquery()
    )
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(categories, func.coalesce(counts.c.n, 0).label("n"))
                .outerjoin(counts, counts.c.category_id == categories.c.id)
                .where(categories.c.owner_id == actor.user_id)
                .order_by(func.lower(categories.c.name))
            )
        ).all()
    return CategoryList(items=[_category_public(r, r.n) for r in rows])


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"You already have a category named “{name}” (names are compared ignoring case).", {"field": "name"}
    )


async def create_category(cmd: CategoryCreate, ctx: Ctx, deps: DocsDeps) -> CategoryPublic:
    actor = await _user(ctx, deps)
    name = _clean_name(cmd.name)
    try:
        async with deps.db.transaction() as s:
            row = (
                await s.execute(
                    insert(categories)
                    .values(id=uuid.uuid4(), owner_id=actor.user_id, name=name)
                    .returning(categories)
                )
            ).one()
    except IntegrityError:
        raise _name_taken(name) from None
    return _category_public(row)


async def update_category(cmd: CategoryUpdate, ctx: Ctx, deps: DocsDeps) -> CategoryPublic:
    actor = await _user(ctx, deps)
    name = _clean_name(cmd.name)
    try:
        async with deps.db.transaction() as s:
            await _owned_category(s, cmd.id, actor.user_id)
            row = (
                await s.execute(
                    update(categories)
                    .where(categories.c.id == cmd.id)
                    .values(name=name)
                    .returning(categories)
                )
            ).one()
            n = (
                await s.execute(select(func.count()).where(document_categories.c.category_id == cmd.id))
            ).scalar_one()
    except IntegrityError:
        raise _name_taken(name) from None
    return _category_public(row, n)


async def delete_category(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    actor = await _user(ctx, deps)
    async with deps.db.transaction() as s:
        await _owned_category(s, cmd.id, actor.user_id)
        await s.execute(delete(categories).where(categories.c.id == cmd.id))
    return Empty()


# ---- tasks --------------------------------------------------------------------------------------------------------


def _task_scope(actor: Actor, all_users: bool) -> list[Any]:
    if all_users:
        if not actor.is_admin:
            raise Forbidden("Only administrators can see everyone's tasks.")
        return []
    return [tasks.c.owner_id == actor.user_id]


async def list_tasks(cmd: ListTasks, ctx: Ctx, deps: DocsDeps) -> TaskPage:
    actor = await _user(ctx, deps)
    t = tasks.c
    conds = _task_scope(actor, cmd.all_users)
    if cmd.status:
        conds.append(t.status.in_(cmd.status))
    if cmd.kind:
        conds.append(t.kind.in_(cmd.kind))
    if cmd.created_from:
        conds.append(t.created_at >= cmd.created_from)
    if cmd.created_to:
        conds.append(t.created_at <= cmd.created_to)
    if cmd.filename:
        conds.append(t.filename.ilike(_like(cmd.filename.strip()), escape="\\"))
    page_conds = list(conds)
    if cmd.cursor:
        try:
            at, tid = json.loads(base64.urlsafe_b64decode(cmd.cursor + "=" * (-len(cmd.cursor) % 4)))
            bound = tuple_(literal(datetime.fromisoformat(at)), literal(UUID(tid)))
        except Exception:
            raise Invalid("The cursor is not valid; start again without it.") from None
        page_conds.append(tuple_(t.created_at, t.id) < bound)
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(tasks)
                .where(*page_conds)
                .order_by(t.created_at.desc(), t.id.desc())
                .limit(cmd.limit + 1)
            )
        ).all()
        total = (await s.execute(select(func.count()).select_from(tasks).where(*conds))).scalar_one()
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    cursor = None
    if more and rows:
        cursor = (
            base64.urlsafe_b64encode(json.dumps([rows[-1].created_at.isoformat(), str(rows[-1].id)]).encode())
            .decode()
            .rstrip("=")
        )
    return TaskPage(
        items=[_task_public(r, show_owner=cmd.all_users) for r in rows], total=total, next_cursor=cursor
    )


async def task_stats(cmd: TaskStatsQuery, ctx: Ctx, deps: DocsDeps) -> TaskStats:
    actor = await _user(ctx, deps)
    t = tasks.c
    conds = _task_scope(actor, cmd.all_users)
    if cmd.created_from:
        conds.append(t.created_at >= cmd.created_from)
    if cmd.created_to:
        conds.append(t.created_at <= cmd.created_to)
    async with deps.db.session() as s:
        by_status = dict(
            (await s.execute(select(t.status, func.count()).where(*conds).group_by(t.status))).all()
        )
        by_kind = dict((await s.execute(select(t.kind, func.count()).where(*conds).group_by(t.kind))).all())
        avg, p95 = (
            await s.execute(
                select(func.avg(t.duration_ms), func.percentile_cont(0.95).within_group(t.duration_ms)).where(
                    *conds, t.duration_ms.isnot(None)
                )
            )
        ).one()
        providers = (
            await s.execute(
                select(
                    t.provider,
                    t.model,
                    func.count(),
                    func.coalesce(func.sum(t.tokens_in), 0),
                    func.coalesce(func.sum(t.tokens_out), 0),
                    func.avg(t.duration_ms),
                )
                .where(*conds, t.provider.isnot(None))
                .group_by(t.provider, t.model)
                .order_by(t.provider, t.model)
            )
        ).all()
        day = func.date_trunc("day", t.created_at)
        days = (
            await s.execute(
                select(
                    cast(day, Date),
                    func.count(),
                    func.count().filter(t.status == "succeeded"),
                    func.count().filter(t.status == "failed"),
                )
                .where(*conds)
                .group_by(day)
                .order_by(day.desc())
                .limit(90)
            )
        ).all()
    return TaskStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_kind=by_kind,
        avg_duration_ms=float(avg) if avg is not None else None,
        p95_duration_ms=float(p95) if p95 is not None else None,
        by_provider=[
            ProviderStats(
                provider=p,
                model=m,
                tasks=n,
                tokens_in=ti,
                tokens_out=to,
                avg_duration_ms=float(a) if a is not None else None,
            )
            for p, m, n, ti, to, a in providers
        ],
        by_day=[DayStats(day=d, tasks=n, succeeded=ok, failed=bad) for d, n, ok, bad in reversed(days)],
    )


async def retry_task(cmd: TaskRef, ctx: Ctx, deps: DocsDeps) -> TaskPublic:
    actor = await _user(ctx, deps)
    async with deps.db.session() as s:
        row = (
            await s.execute(select(tasks).where(tasks.c.id == cmd.id, tasks.c.owner_id == actor.user_id))
        ).first()
    if row is None:
        raise NotFound("There is no such task.", {"id": str(cmd.id)})
    if row.status != "failed":
        raise Conflict(f"Only a failed task can be retried; this one is {row.status}.")
    async with deps.db.session() as s:
        current = (
            await s.execute(select(documents.c.run_id).where(documents.c.id == row.document_id))
        ).scalar()
    if row.document_id is None or current is None:
        raise Conflict("The document of this task was deleted, so it cannot be retried.")
    if current != row.run_id:
        raise Conflict("This document was re-processed since this task; see its newest task.")
    doc = await _reprocess_one(row.document_id, actor, deps, ctx)
    async with deps.db.session() as s:
        new = (
            await s.execute(select(tasks).where(tasks.c.run_id == doc.run_id, tasks.c.stage == "extract"))
        ).one()
    return _task_public(new)


async def events_grant(_: Empty, ctx: Ctx, deps: DocsDeps) -> EventsGrant:
    actor = await _user(ctx, deps)
    return EventsGrant(owner_id=actor.user_id)


# ---- pipeline events -------------------------------------------------------------------------------------------------


async def _doc_for_event(s: Any, doc_id: UUID) -> Any:
    return (await s.execute(select(documents).where(documents.c.id == doc_id).with_for_update())).first()


async def _stage_succeeded(s: Any, run_id: UUID, stage: str) -> bool:
    """Whether the run's stage is recorded as done (call with the document row locked: _doc_for_event)."""
    t = tasks.c
    status = (await s.execute(select(t.status).where(t.run_id == run_id, t.stage == stage))).scalar()
    return status == "succeeded"


async def _task_for_event(s: Any, doc: Any, run_id: UUID, stage: str) -> Any:
    """The (run, stage) task, created when a worker's event arrives first."""
    t = tasks.c
    row = (
        await s.execute(select(tasks).where(t.run_id == run_id, t.stage == stage).with_for_update())
    ).first()
    if row is not None:
        return row
    kind = "analyze" if stage == "analyze" else "extract"
    await s.execute(
        pg_insert(tasks)
        .values(
            id=uuid.uuid4(),
            owner_id=doc.owner_id,
            document_id=doc.id,
            filename=doc.filename,
            run_id=run_id,
            stage=stage,
            kind=kind,
            status="queued",
            attempt=0,
        )
        .on_conflict_do_nothing()
    )
    return (
        await s.execute(select(tasks).where(t.run_id == run_id, t.stage == stage).with_for_update())
    ).one()


def _duration_ms(started: datetime | None, finished: datetime | None) -> int | None:
    if started is None or finished is None:
        return None
    return max(0, int((finished - started).total_seconds() * 1000))


async def _advance(s: Any, doc: Any, run_id: UUID, status: str, **values: Any) -> bool:
    """Move the document forward within its current run; never backwards, never from an old run."""
    if doc.run_id != run_id or STATUS_RANK[status] <= STATUS_RANK[doc.status]:
        return False
    await s.execute(
        update(documents)
        .where(documents.c.id == doc.id)
        .values(status=status, updated_at=func.now(), **values)
    )
    return True


async def on_processing(ev: DocumentProcessing, ctx: Ctx, deps: DocsDeps) -> None:
    status = "extracting" if ev.stage == "extract" else "analyzing"
    async with deps.db.transaction() as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task = await _task_for_event(s, doc, ev.run_id, ev.stage)
        if task.status not in TERMINAL_TASK:
            await s.execute(
                update(tasks)
                .where(tasks.c.id == task.id)
                .values(
                    status="running",
                    attempt=max(task.attempt, ev.attempt),
                    worker=ev.worker[:200],
                    started_at=ev.started_at,
                )
            )
        moved = await _advance(s, doc, ev.run_id, status)
    if moved:
        await _progress(deps, doc.owner_id, doc.id, ev.run_id, status)


async def on_extracted(ev: DocumentExtracted, ctx: Ctx, deps: DocsDeps) -> None:
    async with deps.db.session() as s:
        done = (
            await s.execute(
                select(tasks.c.status).where(tasks.c.run_id == ev.run_id, tasks.c.stage == "extract")
            )
        ).scalar()
        current = (
            await s.execute(select(documents.c.run_id).where(documents.c.id == ev.document_id))
        ).scalar()
    if current is None or done == "succeeded":
        return  # deleted, or this run's result is already recorded
    result: ExtractionResult | None = None
    if current == ev.run_id:
        result = ExtractionResult.model_validate_json(await deps.blobs.read(ev.result_object))
        if result.document_id != ev.document_id or result.run_id != ev.run_id:
            raise ValueError(f"{ev.result_object} belongs to another document or run")
    async with deps.db.transaction() as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        analysed = await _stage_succeeded(s, ev.run_id, "analyze")
        status = "needs_ocr" if ev.needs_ocr else "ready" if analysed else "analyzing"
        task = await _task_for_event(s, doc, ev.run_id, "extract")
        if task.status == "succeeded":
            return
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
            )
        )
        if result is None or doc.run_id != ev.run_id:
            return
        await s.execute(delete(pages).where(pages.c.document_id == doc.id))
        if result.pages:
            await s.execute(
                insert(pages),
                [
                    {"document_id": doc.id, "number": p.number, "text": p.text, "tables": p.tables}
                    for p in result.pages
                ],
            )
        body = "\n\f".join(p.text for p in result.pages)
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
                updated_at=func.now(),
            )
        )
        moved = await _advance(s, doc, ev.run_id, status)
    if moved:
        await _progress(deps, doc.owner_id, doc.id, ev.run_id, status)


async def _category_for_name(s: Any, owner: UUID, name: str, create: bool) -> UUID | None:
    """The owner's category of that name (ignoring case), created if asked; a concurrent create wins the race."""

    def find() -> Any:
        return select(categories.c.id).where(
            categories.c.owner_id == owner, func.lower(categories.c.name) == name.lower()
        )

    cat_id = (await s.execute(find())).scalar()
    if cat_id is None and create:
        await s.execute(
            pg_insert(categories).values(id=uuid.uuid4(), owner_id=owner, name=name).on_conflict_do_nothing()
        )
        cat_id = (await s.execute(find())).scalar()
    return cat_id


async def _apply_suggested_categories(s: Any, doc: Any, names: list[str], may_create: bool) -> None:
    """Assign the suggested categories; names with no category wait for the user when the AI may not create one."""
    link = document_categories.c
    await s.execute(delete(document_categories).where(link.document_id == doc.id, link.source == "ai"))
    rejected = set(doc.rejected_categories or [])
    pending: list[str] = []
    for raw in names:
        name = " ".join(raw.split())[:80]
        if not name or name.lower() in rejected:
            continue
        cat_id = await _category_for_name(s, doc.owner_id, name, create=may_create)
        if cat_id is not None:
            await s.execute(
                pg_insert(document_categories)
                .values(document_id=doc.id, category_id=cat_id, source="ai")
                .on_conflict_do_nothing()
            )
        elif name.lower() not in {p.lower() for p in pending}:
            pending.append(name)
    await s.execute(update(documents).where(documents.c.id == doc.id).values(pending_suggestions=pending))


async def on_analyzed(ev: DocumentAnalyzed, ctx: Ctx, deps: DocsDeps) -> None:
    st = deps.settings()
    async with deps.db.transaction() as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task = await _task_for_event(s, doc, ev.run_id, "analyze")
        if task.status == "succeeded":
            return
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
                provider=ev.provider,
                model=ev.model[:200],
                tokens_in=ev.tokens_in,
                tokens_out=ev.tokens_out,
            )
        )
        if doc.run_id != ev.run_id:
            return
        # A new analysis replaces the model's previous answers; what a user typed stays.
        fields = {k: v for k, v in (doc.fields or {}).items() if v.get("source") == "user"}
        stamp = _now().isoformat()
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
        await s.execute(
            update(documents)
            .where(documents.c.id == doc.id)
            .values(fields=fields, updated_at=func.now(), **_promoted(fields))
        )
        await _apply_suggested_categories(s, doc, ev.fields.suggested_categories, st.ai_may_create_categories)
        # The AI worker reads the extraction from the stream, so its answer can be here before the extraction
        # is recorded; the document is ready (or needs OCR) once both are: on_extracted finishes it then.
        extracted = await _stage_succeeded(s, ev.run_id, "extract")
        moved = extracted and await _advance(s, doc, ev.run_id, "ready")
    if moved:
        await _progress(deps, doc.owner_id, doc.id, ev.run_id, "ready")


async def on_failed(ev: DocumentFailed, ctx: Ctx, deps: DocsDeps) -> None:
    async with deps.db.transaction() as s:
        doc = await _doc_for_event(s, ev.document_id)
        if doc is None:
            return
        task = await _task_for_event(s, doc, ev.run_id, ev.stage)
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
        await _progress(deps, doc.owner_id, doc.id, ev.run_id, "failed", ev.reason)
