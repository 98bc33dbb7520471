"""Text extraction of one uploaded document: claim the run, fetch the original, extract in the pool,
store the result, publish the outcome. No NATS or FastStream here: the transport comes in `Deps`.

Failure policy: a reason that the same file and limits would produce again (`encrypted`,
`unreadable`, `memory`, `too_many_pages`, `too_large`) is final at once. A `timeout` (the machine
may just be busy) or an `internal` error (NATS, Object Store) is retried with a growing delay by
the consumer; each failed attempt publishes `DocumentFailed(final=False)`, and after the last one
`give_up` publishes `final=True` with the last reason, so a document is never stuck.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts.base import Event
from contracts.documents import (
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    PREVIEW_MAX_PAGES,
    DocumentExtracted,
    DocumentFailed,
    DocumentProcessing,
    DocumentProgress,
    DocumentUploaded,
    ExtractionResult,
    PdfMetadata,
    preview_object_name,
    result_object_name,
)
from services.kit.bus import Ctx
from services.kit.logging import log_fields
from services.kit.objects import ObjectWriter

from .engine import ExtractError
from .pool import ExtractPool

log = logging.getLogger("atrium.extract")

RETRYABLE = frozenset({"timeout", "internal"})


class ExtractionFailed(Exception):
    """Raised to the consumer so it redelivers later; carries the reason for `give_up`."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class Deps:
    pool: ExtractPool
    objects: Any  # nats ObjectStore
    runs: Any  # nats KeyValue: run_id → "<stream seq>" (claimed) or "<stream seq>:done"
    publish: Callable[[Event[Any], BaseModel, str], Awaitable[None]]
    progress: Callable[[DocumentUploaded, DocumentProgress], Awaitable[None]]
    worker: str
    tmp_dir: Path
    max_bytes: int


def now() -> datetime:
    return datetime.now(UTC)


async def claim_run(runs: Any, run_id: str, stream_seq: int) -> bool:
    """True when this message owns the run: first to claim it, or the same message redelivered
    (a crashed worker's claim) that has not published its outcome yet."""
    from nats.js.errors import KeyWrongLastSequenceError

    mine = str(stream_seq)
    try:
        await runs.create(run_id, mine.encode())
        return True
    except KeyWrongLastSequenceError:
        entry = await runs.get(run_id)
        return (entry.value or b"").decode() == mine


async def mark_run_done(runs: Any, run_id: str, stream_seq: int) -> None:
    await runs.put(run_id, f"{stream_seq}:done".encode())


async def extract_uploaded(event: DocumentUploaded, deps: Deps, ctx: Ctx) -> None:
    run = str(event.run_id)
    if not await claim_run(deps.runs, run, ctx.stream_seq):
        log_fields(log, logging.INFO, "run already taken by another message; skipped",
                   document_id=str(event.document_id), run_id=run, stream_seq=ctx.stream_seq)
        return
    started = now()
    ids = f"{event.document_id}:{event.run_id}"
    await deps.publish(DOCUMENT_PROCESSING, DocumentProcessing(
        document_id=event.document_id, owner_id=event.owner_id, run_id=event.run_id, stage="extract",
        attempt=ctx.attempt, worker=deps.worker, started_at=started), f"{ids}:extract:processing:{ctx.attempt}")
    preview_dir = tempfile.mkdtemp(prefix="previews-", dir=deps.tmp_dir)
    try:
        result = await _fetch_and_extract(event, deps, ctx, preview_dir)
        preview_pages = await _store_previews(event, deps, preview_dir, result.get("preview_pages", 0))
    except ExtractError as exc:
        final = exc.reason not in RETRYABLE
        await publish_failed(event, deps, ctx, exc.reason, exc.message, final=final, started=started)
        if final:
            await mark_run_done(deps.runs, run, ctx.stream_seq)
            return
        raise ExtractionFailed(exc.reason, exc.message) from None
    finally:
        shutil.rmtree(preview_dir, ignore_errors=True)

    name = result_object_name(event.document_id, event.run_id)
    stored = ExtractionResult(document_id=event.document_id, run_id=event.run_id, page_count=result["page_count"],
                              pages=result["pages"], metadata=PdfMetadata(**result["metadata"]),
                              needs_ocr=result["needs_ocr"], engine=result["engine"])
    await deps.objects.put(name, stored.model_dump_json().encode())
    await deps.publish(DOCUMENT_EXTRACTED, DocumentExtracted(
        document_id=event.document_id, owner_id=event.owner_id, run_id=event.run_id,
        page_count=stored.page_count, needs_ocr=stored.needs_ocr,
        chars=sum(len(p.text) for p in stored.pages), table_count=sum(len(p.tables) for p in stored.pages),
        metadata=stored.metadata, result_object=name, engine=stored.engine, worker=deps.worker,
        attempt=ctx.attempt, started_at=started, finished_at=now(), kind=event.kind, preview_pages=preview_pages),
        f"{ids}:extracted")
    await mark_run_done(deps.runs, run, ctx.stream_seq)
    log_fields(log, logging.INFO, "extracted", document_id=str(event.document_id), run_id=run,
               pages=stored.page_count, needs_ocr=stored.needs_ocr, attempt=ctx.attempt,
               ms=round((now() - started).total_seconds() * 1000),
               tables_skipped=result.get("tables_skipped"), text_from_pdfplumber=result.get("text_from_pdfplumber"))


async def _store_previews(event: DocumentUploaded, deps: Deps, preview_dir: str, pages: int) -> int:
    """Put the rendered page PNGs into the Object Store; a page the child could not render is skipped."""
    for page in range(1, pages + 1):
        path = Path(preview_dir) / f"{page}.png"
        if not path.is_file():
            continue
        writer = ObjectWriter(deps.objects, preview_object_name(event.document_id, event.run_id, page))
        try:
            await writer.write(path.read_bytes())
            await writer.close()
        except Exception as exc:
            await writer.abort()
            raise ExtractError("internal", f"Storing a page preview failed: {type(exc).__name__}.") from None
    return pages


async def _fetch_and_extract(event: DocumentUploaded, deps: Deps, ctx: Ctx, preview_dir: str) -> dict[str, Any]:
    from nats.js.errors import NotFoundError, ObjectNotFoundError

    try:
        info = await deps.objects.get_info(event.object_name)
    except (ObjectNotFoundError, NotFoundError):
        # Deleted before we got to it: nothing to retry.
        raise ExtractError("unreadable", "The original file is no longer stored (the document was deleted "
                                         "or its upload did not finish).") from None
    except Exception as exc:
        raise ExtractError("internal", f"Could not reach the object store: {type(exc).__name__}.") from None
    if (info.size or 0) > deps.max_bytes:
        raise ExtractError("too_large", f"The file has {info.size} bytes; the extraction limit is "
                                        f"{deps.max_bytes // (1024 * 1024)} MB.")
    fd, path = tempfile.mkstemp(prefix="extract-", suffix=".pdf", dir=deps.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as file:
            try:
                await deps.objects.get(event.object_name, writeinto=file)
            except Exception as exc:
                raise ExtractError("internal", f"Fetching the original failed: {type(exc).__name__}.") from None

        async def on_page(page: int, pages: int) -> None:
            await deps.progress(event, DocumentProgress(document_id=event.document_id, run_id=event.run_id,
                                                        stage="extract", status="extracting", page=page,
                                                        pages=pages, message=f"page {page} of {pages} extracted"))

        return await deps.pool.extract(path, on_page=on_page, heartbeat=ctx.heartbeat, preview_dir=preview_dir,
                                       preview_pages=PREVIEW_MAX_PAGES)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


async def publish_failed(event: DocumentUploaded, deps: Deps, ctx: Ctx, reason: str, message: str, *,
                         final: bool, started: datetime | None) -> None:
    await deps.publish(DOCUMENT_FAILED, DocumentFailed(
        document_id=event.document_id, owner_id=event.owner_id, run_id=event.run_id, stage="extract",
        reason=reason, message=message[:2000], attempt=ctx.attempt, final=final, worker=deps.worker,  # type: ignore[arg-type]
        started_at=started, finished_at=now()),
        f"{event.document_id}:{event.run_id}:extract:failed:{ctx.attempt}:{'final' if final else 'retry'}")


async def give_up(event: DocumentUploaded, exc: BaseException, deps: Deps, ctx: Ctx) -> None:
    """The last attempt failed: the document is `failed` with the last reason."""
    if isinstance(exc, ExtractionFailed):
        reason, message = exc.reason, exc.message
    else:
        reason, message = "internal", f"The text worker failed: {type(exc).__name__}."
    await publish_failed(event, deps, ctx, reason, f"{message} (gave up after {ctx.attempt} attempts)",
                         final=True, started=None)
    await mark_run_done(deps.runs, str(event.run_id), ctx.stream_seq)
