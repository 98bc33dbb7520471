"""A document's stored files: the original (download), the PDF with text layer (OCR's copy), page previews
(rendered on first request), and deleting a document with every file of every run (its owner, or an
administrator with an audit entry)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, NotFound
from contracts.docs_api import DocumentRef, DownloadTicket, PreviewRef, PreviewTicket
from contracts.documents import (
    PREVIEW_MAX_PAGES,
    RenderPreviews,
    image_pdf_object_name,
    preview_object_name,
    result_object_name,
    text_layer_object_name,
)
from services.kit.audit import record_audit
from services.kit.bus import Ctx

from ..access import Caller, acting, as_admin, as_system, read_document_row
from ..rows import DocumentRow
from ..tables import audit_log, documents, tasks
from .common import DocsDeps, document_for, user


async def download_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DownloadTicket:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller, write=True) as s:
        row = await document_for(s, cmd.id, caller, "viewer")
        await record_audit(
            s,
            audit_log,
            ctx,
            "document.downloaded",
            actor_id=caller.user_id,
            target_id=cmd.id,
            filename=row.filename,
            role=row.access_role,
        )
    return DownloadTicket(
        object_name=row.object_name, filename=row.filename, size=row.size, content_type=row.media_type
    )


def text_layer_filename(filename: str) -> str:
    """`scan.jpg` → `scan.ocr.pdf`: the copy is named after the original, and never mistaken for it."""
    stem = filename.rsplit(".", 1)[0] if "." in filename.lstrip(".") else filename
    return f"{stem}.ocr.pdf"


async def download_text_layer(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DownloadTicket:
    """The current run's "PDF with text layer": the original pages with OCR's words as invisible text."""
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        row = await document_for(s, cmd.id, caller, "viewer")
    if row.text_layer_object is None:
        if row.ocr_reason:
            why = f"OCR did not read its scanned pages: {row.ocr_reason}"
        elif row.status in ("queued", "extracting", "ocr"):
            why = "its pages are still being read; try again when it is ready."
        else:
            why = (
                "no page of it needed OCR (it has a text layer of its own: download the original)"
                if row.ocr_pages == 0
                else "its pages were read by a vision model, which gives text without word positions."
            )
        raise NotFound(f"This document has no PDF with text layer: {why}", {"id": str(cmd.id)})
    size, _ = await deps.blobs.info(row.text_layer_object)
    async with acting(deps.db, caller, write=True) as s:
        await record_audit(
            s,
            audit_log,
            ctx,
            "document.text_layer_downloaded",
            actor_id=caller.user_id,
            target_id=cmd.id,
            filename=row.filename,
            role=row.access_role,
        )
    return DownloadTicket(
        object_name=row.text_layer_object, filename=text_layer_filename(row.filename), size=size
    )


async def preview_page(cmd: PreviewRef, ctx: Ctx, deps: DocsDeps) -> PreviewTicket:
    """A page's preview, rendered by the text worker the first time anyone asks for it (with the pages
    around it). Not audited like a download: the detail page reads every preview on each visit."""
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        row = await document_for(s, cmd.document_id, caller, "viewer")
    return await stored_preview(row, cmd.page, deps, reader=caller)


async def stored_preview(
    row: DocumentRow, page: int, deps: DocsDeps, *, reader: Caller | None, grant: str | None = None
) -> PreviewTicket:
    """The page's PNG of the document's current run, asked of the text worker if it is not stored yet:
    with the reader's token, or (a share link's visitor has none) with a grant signed by this service."""
    if page > row.preview_pages:
        raise NotFound("This page has no preview.", {"page": page})
    name = preview_object_name(row.id, row.run_id, page)
    try:
        size, _ = await deps.blobs.info(name)
        return PreviewTicket(object_name=name, size=size)
    except NotFound:
        pass
    rendered = await deps.render_previews(
        RenderPreviews(
            document_id=row.id,
            owner_id=row.owner_id,
            reader_id=reader.user_id if reader else None,
            grant=grant,
            run_id=row.run_id,
            object_name=row.pdf_object or row.object_name,  # an uploaded image: the PDF made of it
            page_count=row.page_count or page,
            page=page,
        ),
        reader.actor.token if reader else None,
    )
    if page not in rendered.pages:  # pdfium cannot draw this page
        raise NotFound("This page has no preview: it could not be rendered.", {"page": page})
    size, _ = await deps.blobs.info(name)
    return PreviewTicket(object_name=name, size=size)


async def _result_objects(s: AsyncSession, doc_id: UUID, page_count: int | None) -> list[str]:
    runs = (
        await s.execute(select(func.distinct(tasks.c.run_id)).where(tasks.c.document_id == doc_id))
    ).scalars()
    # Each run's result, and the PDF with text layer and the PDF of an image it may have written.
    names = [
        name(doc_id, r)
        for r in runs
        for name in (result_object_name, text_layer_object_name, image_pdf_object_name)
    ]
    # Previews of every run that got through extraction (same file, so the current page count applies).
    extracted = (
        await s.execute(
            select(tasks.c.run_id).where(
                tasks.c.document_id == doc_id, tasks.c.stage == "extract", tasks.c.status == "succeeded"
            )
        )
    ).scalars()
    numbers = range(1, min(page_count or 0, PREVIEW_MAX_PAGES) + 1)
    return names + [preview_object_name(doc_id, r, n) for r in extracted for n in numbers]


async def remove_document(s: AsyncSession, row: DocumentRow, deps: DocsDeps) -> None:
    """Every stored file of every run (original, extraction results, page previews), then the row (its pages
    and category links cascade; its tasks keep their history with no document). In the caller's transaction."""
    results = await _result_objects(s, row.id, row.page_count)
    # Blobs first: if the store is away this fails and the row stays, so nothing is orphaned silently.
    await deps.blobs.delete(row.object_name)
    for name in results:
        await deps.blobs.delete(name)
    await s.execute(delete(documents).where(documents.c.id == row.id))


async def _delete_in(
    s: AsyncSession,
    row: DocumentRow,
    actor_id: UUID | None,
    ctx: Ctx,
    deps: DocsDeps,
    *,
    audit_action: str = "document.deleted",
    **why: Any,
) -> None:
    await remove_document(s, row, deps)
    await record_audit(
        s,
        audit_log,
        ctx,
        audit_action,
        actor_id=actor_id,
        target_id=row.id,
        filename=row.filename,
        **why,
    )


async def _locked(s: AsyncSession, doc_id: UUID) -> DocumentRow | None:
    """Anyone's document, locked for its deletion (a session past the owner's rule: admin or system)."""
    return (  # type: ignore[return-value]
        await s.execute(select(documents).where(documents.c.id == doc_id).with_for_update())
    ).first()


async def delete_one(doc_id: UUID, caller: Caller, ctx: Ctx, deps: DocsDeps) -> None:
    """Its owner deletes a document; an administrator may delete anyone's, recorded as such."""
    async with acting(deps.db, caller, write=True) as s:
        row = await read_document_row(s, doc_id, caller)
        by_owner = not caller.is_admin or (row is not None and row.access_role == "owner")
        if by_owner:
            owned = await document_for(s, doc_id, caller, "owner", what="delete it", lock=True)
            await _delete_in(s, owned, caller.user_id, ctx, deps)
            run = owned.run_id
    if not by_owner:
        async with as_admin(deps.db, caller) as s:
            found = await _locked(s, doc_id)
            if found is None:
                raise NotFound("There is no such document.", {"id": str(doc_id)})
            await _delete_in(s, found, caller.user_id, ctx, deps, by_admin=True, owner_id=found.owner_id)
            run = found.run_id
    await deps.mark_superseded(run, "deleted")  # a run still queued for the workers is skipped


async def remove_for_service(doc_id: UUID, ctx: Ctx, deps: DocsDeps, *, audit_action: str) -> bool:
    """The service's own removal of a document (after a restore: its original is gone), past row-level
    security; False when it is gone already."""
    async with as_system(deps.db, "restore") as s:
        found = await _locked(s, doc_id)
        if found is None:
            return False
        await _delete_in(s, found, None, ctx, deps, audit_action=audit_action)
    await deps.mark_superseded(found.run_id, "deleted")
    return True


async def delete_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    caller = await user(ctx, deps)
    await delete_one(cmd.id, caller, ctx, deps)
    return Empty()
