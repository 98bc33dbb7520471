"""A user's export of everything of theirs (data portability): their documents page by page with fields,
categories and tasks, and each document's pages' text in bounded chunks. The gateway streams them, with
the originals, into one zip (gateway/export.py). Only the caller's own documents, as everywhere."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, or_, select

from contracts.docs_api import ExportedDocument, ExportPage, ExportQuery, PagePublic, PagesChunk, PagesQuery
from services.kit.audit import record_audit
from services.kit.bus import Ctx
from services.kit.cursor import decode_cursor, encode_cursor

from ..rows import TaskRow
from ..tables import audit_log, documents, pages, tasks
from .common import DocsDeps, owned, user
from .documents import detail_of, page_public
from .views import categories_of

EXPORT_QUERY = "export"
# A chunk stops once it passes this many characters (one page at least), far below the bus's 8 MB message
# limit; a single page beyond that limit fails here as it does in the document detail.
PAGES_CHUNK_CHARS = 1_000_000


async def export_documents(cmd: ExportQuery, ctx: Ctx, deps: DocsDeps) -> ExportPage:
    actor = await user(ctx, deps)
    stmt = select(documents).where(documents.c.owner_id == actor.user_id)
    if cmd.cursor:
        at, last = decode_cursor(cmd.cursor, (datetime, UUID), bound_to=[EXPORT_QUERY])
        stmt = stmt.where(
            or_(documents.c.created_at > at, and_(documents.c.created_at == at, documents.c.id > last))
        )
    stmt = stmt.order_by(documents.c.created_at, documents.c.id).limit(cmd.limit + 1)
    async with deps.db.transaction() as s:
        rows = (await s.execute(stmt)).all()
        more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
        ids = [r.id for r in rows]
        cats = await categories_of(s, ids)
        by_doc: dict[UUID, list[TaskRow]] = defaultdict(list)
        if ids:
            for t in await s.execute(
                select(tasks)
                .where(tasks.c.document_id.in_(ids))
                .order_by(tasks.c.created_at.desc(), tasks.c.id)
            ):
                by_doc[t.document_id].append(t)
        if not cmd.cursor:  # one audit row per export, at its first page
            await record_audit(s, audit_log, ctx, "documents.exported", actor_id=actor.user_id)
    items = [
        detail_of(r, cats[r.id], by_doc[r.id], [], model=ExportedDocument, object_name=r.object_name)
        for r in rows
    ]
    last_row = rows[-1] if rows else None
    cursor = (
        encode_cursor([last_row.created_at, last_row.id], bound_to=[EXPORT_QUERY])
        if more and last_row
        else None
    )
    return ExportPage(items=items, next_cursor=cursor)  # type: ignore[arg-type]


async def document_pages(cmd: PagesQuery, ctx: Ctx, deps: DocsDeps) -> PagesChunk:
    actor = await user(ctx, deps)
    out: list[PagePublic] = []
    size = 0
    async with deps.db.session() as s:
        await owned(s, cmd.document_id, actor.user_id)
        result = await s.stream(
            select(pages.c.number, pages.c.text, pages.c.tables)
            .where(pages.c.document_id == cmd.document_id, pages.c.number >= cmd.from_page)
            .order_by(pages.c.number)
        )
        async for p in result:
            if out and size >= PAGES_CHUNK_CHARS:
                return PagesChunk(pages=out, next_page=p.number)
            out.append(page_public(p))
            size += len(p.text) + len(str(p.tables))
    return PagesChunk(pages=out)
