"""Text extraction of one uploaded document: claim the run, fetch the original, extract in the pool,
store the result, publish the outcome. No NATS or FastStream here: the transport comes in `Deps`.

Failure policy: a reason that the same file and limits would produce again (`encrypted`,
`unreadable`, `memory`, `too_many_pages`, `too_large`) is final at once. A `timeout` (the machine
may just be busy), an `internal` error (NATS, Object Store) or a vision OCR model that erred or limited
the rate (`provider_error`) is retried with a growing delay by the consumer; each failed attempt publishes `DocumentFailed(final=False)`, and after the last one
`give_up` publishes `final=True` with the last reason, so a document is never stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from contracts.base import Event, NotFound, Unauthenticated, Unavailable
from contracts.documents import (
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_OCR_PROGRESS,
    DOCUMENT_PROCESSING,
    PREVIEW_GRANT,
    PREVIEW_MAX_PAGES,
    DocumentExtracted,
    DocumentFailed,
    DocumentOcrProgress,
    DocumentProcessing,
    DocumentProgress,
    DocumentUploaded,
    ExtractionResult,
    FailureReason,
    MediaType,
    OcrEngineInfo,
    OcrReport,
    PdfMetadata,
    PreviewsRendered,
    RenderPreviews,
    image_pdf_object_name,
    preview_batch,
    preview_object_name,
    result_object_name,
    text_layer_object_name,
)
from services.extraction.ocr.reader import OcrOptions
from services.extraction.ocr.recognize import version
from services.extraction.ocr.tessdata import languages
from services.extraction.ocr.vision import VisionClient
from services.kit.context import Ctx
from services.kit.grants import verify_grant
from services.kit.logging import log_fields
from services.kit.media import SNIFF_BYTES, sniff
from services.kit.objects import ObjectWriter, read_object_into
from services.kit.security import Actor

from .engine import ExtractError, OcrJob
from .pool import ExtractPool

log = logging.getLogger("atrium.extract")

RETRYABLE = frozenset({"timeout", "internal", "provider_error"})


class ExtractionFailed(Exception):
    """Raised to the consumer so it redelivers later; carries the reason for `give_up`."""

    def __init__(self, reason: FailureReason, message: str):
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
    # Page previews: their own pool, so a preview never waits behind a long extraction.
    previews: ExtractPool
    originals: RecentOriginals
    check_access: Callable[[Actor], Awaitable[None]]  # refuses a user without the Documents app
    platform_secret: str = ""  # verifies the documents service's grants (previews for share links)
    rendering: dict[tuple[UUID, UUID, int], PreviewBatch] = field(default_factory=dict)
    # The OCR options for the next document (called per document, so settings can change live).
    ocr_options: Callable[[], OcrOptions] = OcrOptions
    allow_local_servers: bool = False  # vision OCR servers on this machine or network (providers/network.py)
    engines: Any = None  # nats KeyValue `OCR_ENGINES_BUCKET`: what this worker can read, for the settings
    # Whether the documents service replaced the run (services/docs/superseded.py): then it is skipped.
    superseded: Callable[[UUID], Awaitable[bool]] = field(default=lambda run: _never())


async def _never() -> bool:
    return False


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


async def extract_uploaded(event: DocumentUploaded, ctx: Ctx, deps: Deps) -> None:
    run = str(event.run_id)
    if await deps.superseded(event.run_id):  # re-run or deleted meanwhile: its task row says superseded
        log_fields(
            log, logging.INFO, "run superseded; not extracted", document_id=str(event.document_id), run_id=run
        )
        return
    if not await claim_run(deps.runs, run, ctx.stream_seq):
        log_fields(
            log,
            logging.INFO,
            "run already taken by another message; skipped",
            document_id=str(event.document_id),
            run_id=run,
            stream_seq=ctx.stream_seq,
        )
        return
    started = now()
    ids = f"{event.document_id}:{event.run_id}"
    await deps.publish(
        DOCUMENT_PROCESSING,
        DocumentProcessing(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            stage="extract",
            attempt=ctx.attempt,
            worker=deps.worker,
            started_at=started,
        ),
        f"{ids}:extract:processing:{ctx.attempt}",
    )
    layer_path, image_pdf = _temp_path(deps, "text-layer-"), _temp_path(deps, "image-pdf-")
    pdf_object: str | None = None
    try:
        result, media_type = await _fetch_and_extract(event, deps, ctx, layer_path, image_pdf)
        if media_type != "application/pdf":  # an image: the PDF made of it is where pages and previews are
            pdf_object = image_pdf_object_name(event.document_id, event.run_id)
            await store_file(deps.objects, pdf_object, Path(image_pdf))
        ocr = _ocr_report(result.get("ocr"))
        if ocr is not None and result["ocr"].get("text_layer"):
            ocr.text_layer_object = text_layer_object_name(event.document_id, event.run_id)
            await store_file(deps.objects, ocr.text_layer_object, Path(layer_path))
    except ExtractError as exc:
        final = exc.reason not in RETRYABLE
        await publish_failed(event, deps, ctx, exc.reason, exc.message, final=final, started=started)
        if final:
            await mark_run_done(deps.runs, run, ctx.stream_seq)
            return
        raise ExtractionFailed(exc.reason, exc.message) from None
    finally:
        for path in (layer_path, image_pdf):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    name = result_object_name(event.document_id, event.run_id)
    stored = ExtractionResult(
        document_id=event.document_id,
        run_id=event.run_id,
        page_count=result["page_count"],
        pages=result["pages"],
        metadata=PdfMetadata(**result["metadata"]),
        needs_ocr=result["needs_ocr"],
        engine=result["engine"],
        ocr=ocr,
    )
    await deps.objects.put(name, stored.model_dump_json().encode())
    await deps.publish(
        DOCUMENT_EXTRACTED,
        DocumentExtracted(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            page_count=stored.page_count,
            needs_ocr=stored.needs_ocr,
            chars=sum(len(p.text) for p in stored.pages),
            table_count=sum(len(p.tables) for p in stored.pages),
            metadata=stored.metadata,
            result_object=name,
            engine=stored.engine,
            worker=deps.worker,
            attempt=ctx.attempt,
            started_at=started,
            finished_at=now(),
            kind=event.kind,
            # Previews are rendered when first asked for (`render_previews`), not here: a third of the
            # pipeline's time went to rendering pages nobody might look at.
            preview_pages=min(stored.page_count, PREVIEW_MAX_PAGES),
            ocr_pages=len(ocr.pages) if ocr else 0,
            ocr_reason=ocr.reason[:2000] if ocr else "",
            text_layer_object=ocr.text_layer_object if ocr else None,
            pdf_object=pdf_object,
            ocr_engine=ocr.engine if ocr else "",
        ),
        f"{ids}:extracted",
    )
    await mark_run_done(deps.runs, run, ctx.stream_seq)
    log_fields(
        log,
        logging.INFO,
        "extracted",
        document_id=str(event.document_id),
        run_id=run,
        pages=stored.page_count,
        needs_ocr=stored.needs_ocr,
        attempt=ctx.attempt,
        ms=round((now() - started).total_seconds() * 1000),
        tables_skipped=result.get("tables_skipped"),
        text_capped=result.get("text_capped"),
        text_from_pdfplumber=result.get("text_from_pdfplumber"),
        ocr_pages=ocr.pages if ocr else None,
        ocr_skipped=ocr.skipped if ocr else None,
        ocr_s=ocr.seconds if ocr else None,
        text_layer_error=(result.get("ocr") or {}).get("text_layer_error"),
    )


def engine_key(worker: str) -> str:
    """A KV key of the worker's name (`host:pid`)."""
    return re.sub(r"[^A-Za-z0-9_=-]", "-", worker)[:200]


def ocr_engine_info(worker: str) -> OcrEngineInfo:
    try:
        engine = version()
    except ImportError:
        engine = ""
    return OcrEngineInfo(worker=worker, engine=engine, languages=languages() if engine else [], at=now())


async def announce_ocr_engine(deps: Deps) -> None:
    """Put what this worker's OCR can read where the settings look (renewed before the bucket's TTL)."""
    if deps.engines is None:
        return
    info = await asyncio.to_thread(ocr_engine_info, deps.worker)
    await deps.engines.put(engine_key(deps.worker), info.model_dump_json().encode())


def _temp_path(deps: Deps, prefix: str) -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".pdf", dir=deps.tmp_dir)
    os.close(fd)
    return path


def _ocr_report(raw: dict[str, Any] | None) -> OcrReport | None:
    if raw is None:
        return None
    return OcrReport(
        engine=raw["engine"],
        languages=raw["languages"],
        pages=raw["pages"],
        skipped=raw["skipped"],
        reason=raw["reason"],
        seconds=raw["seconds"],
        step_seconds=raw["step_seconds"],
    )


async def store_file(objects: Any, name: str, path: Path, chunk: int = 1024 * 1024) -> None:
    """Stream a local file into the Object Store (an OCRed scan's text layer PDF can be large)."""
    writer = ObjectWriter(objects, name)
    try:
        with path.open("rb") as file:
            while data := await asyncio.to_thread(file.read, chunk):
                await writer.write(data)
        await writer.close()
    except Exception as exc:
        await writer.abort()
        raise ExtractError("internal", f"Storing {name} failed: {type(exc).__name__}.") from None


async def fetch_original(object_name: str, deps: Deps, target: Any) -> None:
    """Stream the original from the Object Store into the open binary file `target`."""
    from nats.js.errors import NotFoundError, ObjectNotFoundError

    try:
        info = await deps.objects.get_info(object_name)
    except (ObjectNotFoundError, NotFoundError):
        # Deleted before we got to it: nothing to retry.
        raise ExtractError(
            "unreadable",
            "The original file is no longer stored (the document was deleted or its upload did not finish).",
        ) from None
    except Exception as exc:
        raise ExtractError("internal", f"Could not reach the object store: {type(exc).__name__}.") from None
    if (info.size or 0) > deps.max_bytes:
        raise ExtractError(
            "too_large",
            f"The file has {info.size} bytes; the extraction limit is {deps.max_bytes // (1024 * 1024)} MB.",
        )
    try:
        await read_object_into(deps.objects, object_name, target)
    except Exception as exc:
        raise ExtractError("internal", f"Fetching the original failed: {type(exc).__name__}.") from None


async def _fetch_and_extract(
    event: DocumentUploaded, deps: Deps, ctx: Ctx, text_layer_path: str, image_pdf: str
) -> tuple[dict[str, Any], MediaType | None]:
    """The extraction result, and what the original is (from its first bytes): a PDF, or an image that the
    pool child writes as a PDF to `image_pdf` first."""
    fd, path = tempfile.mkstemp(prefix="extract-", suffix=".pdf", dir=deps.tmp_dir)
    try:
        with os.fdopen(fd, "w+b") as file:
            await fetch_original(event.object_name, deps, file)
            file.seek(0)
            media_type = sniff(file.read(SNIFF_BYTES))

        async def on_page(page: int, pages: int) -> None:
            await deps.progress(
                event,
                DocumentProgress(
                    document_id=event.document_id,
                    run_id=event.run_id,
                    stage="extract",
                    status="extracting",
                    page=page,
                    pages=pages,
                    message=f"page {page} of {pages} extracted",
                ),
            )

        options = deps.ocr_options()
        # The key stays here: the child only draws the pages, the worker sends them (ocr/vision.py).
        ocr = OcrJob(dataclasses.replace(options, api_key=""), text_layer_path)
        client = VisionClient(options, deps.allow_local_servers) if options.provider != "tesseract" else None

        async def on_ocr_page(done: int, total: int) -> None:
            # Recorded by the documents service (status `ocr`, the counts a reload shows), which sends the
            # live progress on; a durable event, since a lost "OCR started" would skip the status.
            progress = DocumentOcrProgress(
                document_id=event.document_id,
                owner_id=event.owner_id,
                run_id=event.run_id,
                done=done,
                total=total,
                attempt=ctx.attempt,
                worker=deps.worker,
                at=now(),
            )
            ids = f"{event.document_id}:{event.run_id}:{ctx.attempt}:{done}"
            try:
                await deps.publish(DOCUMENT_OCR_PROGRESS, progress, f"ocr:{ids}")
            except Exception as exc:  # progress must never fail the document
                log_fields(log, logging.WARNING, "OCR progress not published", error=repr(exc))

        image = media_type is not None and media_type != "application/pdf"
        try:
            result = await deps.pool.extract(
                path,
                on_page=on_page,
                heartbeat=ctx.heartbeat,
                ocr=ocr,
                on_ocr_page=on_ocr_page,
                image_pdf=image_pdf if image else None,
                vision=client.answer if client else None,
            )
        finally:
            if client is not None:
                await client.aclose()
        return result, media_type
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class RecentOriginals:
    """The last few originals whose previews were asked for, kept on disk: a reader scrolling through a
    document asks for one batch after another, and each would otherwise fetch the whole file again."""

    def __init__(self, directory: Path, keep: int = 4, ttl_s: float = 600.0):
        self.directory = directory
        self.keep = keep
        self.ttl_s = ttl_s
        self._files: dict[str, tuple[str, float]] = {}  # object name → (path, last used)
        self._in_use: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def use(self, object_name: str, fetch: Callable[[Any], Awaitable[None]]) -> AsyncIterator[str]:
        self._in_use[object_name] = self._in_use.get(object_name, 0) + 1
        try:
            async with self._locks.setdefault(object_name, asyncio.Lock()):
                hit = self._files.get(object_name)
                if hit is None or not os.path.exists(hit[0]):
                    fd, path = tempfile.mkstemp(prefix="original-", suffix=".pdf", dir=self.directory)
                    try:
                        with os.fdopen(fd, "wb") as file:
                            await fetch(file)
                    except BaseException:
                        os.unlink(path)
                        raise
                    hit = (path, 0.0)
                self._files[object_name] = (hit[0], time.monotonic())
            yield hit[0]
        finally:
            self._in_use[object_name] -= 1
            if not self._in_use[object_name]:
                del self._in_use[object_name]
                self._locks.pop(object_name, None)
            self._evict()

    def _evict(self) -> None:
        now = time.monotonic()
        by_age = sorted(self._files.items(), key=lambda item: item[1][1], reverse=True)
        for rank, (name, (path, used)) in enumerate(by_age):
            if name not in self._in_use and (rank >= self.keep or now - used > self.ttl_s):
                del self._files[name]
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def clear(self) -> None:
        for path, _ in self._files.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._files.clear()


class PreviewBatch:
    """A batch being rendered: per page, a future set once that page's PNG is stored (True), when the
    batch ended without it (False: pdfium cannot draw it) or to the ExtractError that stopped the batch."""

    def __init__(self, pages: list[int]):
        loop = asyncio.get_running_loop()
        self.pages: dict[int, asyncio.Future[bool | ExtractError]] = {n: loop.create_future() for n in pages}

    def settle(self, outcome: bool | ExtractError) -> None:
        for future in self.pages.values():
            if not future.done():
                future.set_result(outcome)

    def stored(self) -> list[int]:
        return sorted(n for n, f in self.pages.items() if f.done() and f.result() is True)


async def render_previews(cmd: RenderPreviews, ctx: Ctx, deps: Deps) -> PreviewsRendered:
    """Render the batch of pages around `cmd.page`, the asked-for page first, and answer as soon as that
    one is stored; the rest of the batch follows for the reader's next pages. The documents service
    checked the reader's access before asking (the owner, or someone it is shared with); the token it
    forwards must be that reader's, and a user without the Documents app is refused like on any other
    Documents subject. A share link's visitor has no token: then the documents service signed the request
    (`cmd.grant`, with the platform secret)."""
    if ctx.actor is None:
        subject = f"{cmd.document_id}:{cmd.run_id}"
        if not (cmd.grant and verify_grant(deps.platform_secret, PREVIEW_GRANT, subject, cmd.grant)):
            raise Unauthenticated("A preview needs the reader's token or a grant from the documents service.")
    else:
        await deps.check_access(ctx.actor)
        if ctx.actor.user_id not in (cmd.owner_id, cmd.reader_id):
            raise NotFound("No such document.", {"document_id": str(cmd.document_id)})
    pages = list(preview_batch(cmd.page, cmd.page_count))
    if cmd.page not in pages:
        return PreviewsRendered(pages=[])
    key = (cmd.document_id, cmd.run_id, pages[0])
    batch = deps.rendering.get(key)
    if batch is None:  # readers' browsers ask for several pages of one batch at once: render it once
        batch = PreviewBatch([cmd.page] + [n for n in pages if n != cmd.page])
        deps.rendering[key] = batch
        task = asyncio.ensure_future(_render_batch(cmd, batch, deps))
        task.add_done_callback(lambda _: deps.rendering.pop(key, None))
    outcome = await asyncio.shield(batch.pages[cmd.page])
    if isinstance(outcome, ExtractError):
        if outcome.reason == "unreadable":  # the original is gone: the document was deleted meanwhile
            raise NotFound("No such document.", {"document_id": str(cmd.document_id)})
        raise Unavailable(
            f"The page preview could not be rendered now: {outcome.message}", {"reason": outcome.reason}
        )
    return PreviewsRendered(pages=batch.stored())


async def _render_batch(cmd: RenderPreviews, batch: PreviewBatch, deps: Deps) -> None:
    out_dir = tempfile.mkdtemp(prefix="previews-", dir=deps.tmp_dir)

    async def store(page: int, _total: int) -> None:
        writer = ObjectWriter(deps.objects, preview_object_name(cmd.document_id, cmd.run_id, page))
        try:
            await writer.write((Path(out_dir) / f"{page}.png").read_bytes())
            await writer.close()
        except Exception as exc:
            await writer.abort()
            raise ExtractError("internal", f"Storing a page preview failed: {type(exc).__name__}.") from None
        batch.pages[page].set_result(True)

    try:
        async with deps.originals.use(
            cmd.object_name, lambda file: fetch_original(cmd.object_name, deps, file)
        ) as path:
            await deps.previews.render_previews(path, out_dir, list(batch.pages), on_page=store)
        batch.settle(False)
        log_fields(
            log,
            logging.INFO,
            "previews rendered",
            document_id=str(cmd.document_id),
            run_id=str(cmd.run_id),
            pages=batch.stored(),
        )
    except ExtractError as exc:
        batch.settle(exc)
    except Exception as exc:  # never leave a reader waiting on a future nobody will set
        batch.settle(ExtractError("internal", f"Rendering failed: {type(exc).__name__}."))
        log.exception("rendering previews failed")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


async def publish_failed(
    event: DocumentUploaded,
    deps: Deps,
    ctx: Ctx,
    reason: FailureReason,
    message: str,
    *,
    final: bool,
    started: datetime | None,
) -> None:
    await deps.publish(
        DOCUMENT_FAILED,
        DocumentFailed(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            stage="extract",
            reason=reason,  # type: ignore[arg-type]  # an ExtractError carries a FailureReason
            message=message[:2000],
            attempt=ctx.attempt,
            final=final,
            worker=deps.worker,  # type: ignore[arg-type]
            started_at=started,
            finished_at=now(),
        ),
        f"{event.document_id}:{event.run_id}:extract:failed:{ctx.attempt}:{'final' if final else 'retry'}",
    )


async def give_up(event: DocumentUploaded, exc: BaseException, ctx: Ctx, deps: Deps) -> None:
    """The last attempt failed: the document is `failed` with the last reason."""
    reason: FailureReason
    if isinstance(exc, ExtractionFailed):
        reason, message = exc.reason, exc.message
    else:
        reason, message = "internal", f"The text worker failed: {type(exc).__name__}."
    await publish_failed(
        event,
        deps,
        ctx,
        reason,
        f"{message} (gave up after {ctx.attempt} attempts)",
        final=True,
        started=None,
    )
    await mark_run_done(deps.runs, str(event.run_id), ctx.stream_seq)
