"""A document's stored files: the original (download), the PDF with text layer (OCR's copy), page previews
(rendered on first request), and deleting a document with every file of every run."""

from __future__ import annotations

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
from services.kit.security import Actor

from ..rows import DocumentRow
from ..tables import audit_log, documents, tasks
from .common import DocsDeps, owned, user


async def download_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> DownloadTicket:
    actor = await user(ctx, deps)
    async with deps.db.transaction() as s:
        row = await owned(s, cmd.id, actor.user_id)
        await record_audit(
            s,
            audit_log,
            ctx,
            "document.downloaded",
            actor_id=actor.user_id,
            target_id=cmd.id,
            filename=row.filename,
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
    actor = await user(ctx, deps)
    async with deps.db.session() as s:
        row = await owned(s, cmd.id, actor.user_id)
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
    async with deps.db.transaction() as s:
        await record_audit(
            s,
            audit_log,
            ctx,
            "document.text_layer_downloaded",
            actor_id=actor.user_id,
            target_id=cmd.id,
            filename=row.filename,
        )
    return DownloadTicket(
        object_name=row.text_layer_object, filename=text_layer_filename(row.filename), size=size
    )


async def preview_page(cmd: PreviewRef, ctx: Ctx, deps: DocsDeps) -> PreviewTicket:
    """A page's preview, rendered by the text worker the first time anyone asks for it (with the pages
    around it). Not audited like a download: the detail page reads every preview on each visit."""
    actor = await user(ctx, deps)
    async with deps.db.session() as s:
        row = await owned(s, cmd.document_id, actor.user_id)
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
            object_name=row.pdf_object or row.object_name,  # an uploaded image: the PDF made of it
            page_count=row.page_count or cmd.page,
            page=cmd.page,
        ),
        actor.token,
    )
    if cmd.page not in rendered.pages:  # pdfium cannot draw this page
        raise NotFound("This page has no preview: it could not be rendered.", {"page": cmd.page})
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


async def delete_one(
    doc_id: UUID, actor: Actor | None, ctx: Ctx, deps: DocsDeps, *, audit_action: str = "document.deleted"
) -> None:
    """Delete a document of `actor`'s, or (no actor) the service's own removal after a restore."""
    async with deps.db.transaction() as s:
        row: DocumentRow
        if actor is None:
            found = (
                await s.execute(select(documents).where(documents.c.id == doc_id).with_for_update())
            ).first()
            if found is None:
                raise NotFound("There is no such document.", {"id": str(doc_id)})
            row = found  # type: ignore[assignment]
        else:
            row = await owned(s, doc_id, actor.user_id, lock=True)
        await remove_document(s, row, deps)
        run = row.run_id
        await record_audit(
            s,
            audit_log,
            ctx,
            audit_action,
            actor_id=actor.user_id if actor else None,
            target_id=doc_id,
            filename=row.filename,
        )
    await deps.mark_superseded(run, "deleted")  # a run still queued for the workers is skipped


async def delete_document(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    actor = await user(ctx, deps)
    await delete_one(cmd.id, actor, ctx, deps)
    return Empty()
