"""`GET /documents/export`: everything of the caller's in one zip, made while it is sent (data portability).

Nothing is held whole: the standard library's zip writer writes into a pipe the response drains after
every piece (it cannot seek back into a response, so each entry carries a data descriptor, and ZIP64 when
large), documents come a page at a time from the documents service, each document's pages' text in
bounded chunks, each original chunk by chunk from the Object Store. Originals are stored as they are (a
PDF does not compress further); the JSON is deflated.

    export.json                  who, when, how many; the layout below
    categories.json              the caller's categories
    documents/<id>/document.json the document: fields (with who set each), categories, tasks, PDF metadata
    documents/<id>/pages.json    each page's text and tables
    documents/<id>/<filename>    the original, byte for byte
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from contracts import Empty
from contracts import docs_api as api
from contracts.auth import ME
from services.kit.objects import NotFoundError, ObjectNotFoundError

from .bus import CallContext
from .uploads import stream_object

log = logging.getLogger("atrium.gateway")

FORMAT = "atrium-export"
VERSION = 1
LAYOUT = {
    "categories.json": "your categories",
    "documents/<id>/document.json": "a document: fields (source: model or user), categories, tasks, PDF metadata",
    "documents/<id>/pages.json": "its pages' text and tables, in page order",
    "documents/<id>/<filename>": "the original file, byte for byte (sha256 in document.json)",
}


class _Pipe:
    """The zip writer's output, collected until the response takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def original_name(doc: api.ExportedDocument) -> str:
    """The original's name inside its folder: the upload's name (never a path), not one of ours."""
    name = doc.filename.replace("/", "_").replace("\\", "_").strip() or "document.pdf"
    return "original.pdf" if name in ("document.json", "pages.json") else name


class ZipStream:
    def __init__(self, started: datetime) -> None:
        self.pipe = _Pipe()
        self.zip = zipfile.ZipFile(self.pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)  # type: ignore[call-overload]
        self.stamp = started.timetuple()[:6]

    @contextmanager
    def entry(self, name: str, *, stored: bool = False) -> Iterator[IO[bytes]]:
        info = zipfile.ZipInfo(name, date_time=self.stamp)  # type: ignore[arg-type]
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        with self.zip.open(info, "w", force_zip64=True) as out:
            yield out

    def json(self, name: str, value: Any) -> bytes:
        with self.entry(name) as out:
            out.write(json.dumps(value, indent=2, ensure_ascii=False).encode())
        return self.pipe.take()

    def close(self) -> bytes:
        self.zip.close()
        return self.pipe.take()


async def export_zip(
    call: CallContext, token: str, store: Any, first: api.ExportPage
) -> AsyncIterator[bytes]:
    started = datetime.now(UTC)
    z = ZipStream(started)
    me = await call(ME, Empty(), token=token)
    categories: api.CategoryList = await call(api.CATEGORY_LIST, Empty(), token=token)
    yield z.json("categories.json", categories.model_dump(mode="json")["items"])
    page, count, size = first, 0, 0
    try:
        while True:
            for doc in page.items:
                async for piece in _document(z, call, token, store, doc):
                    yield piece
                count, size = count + 1, size + doc.size
            if not page.next_cursor:
                break
            page = await call(api.DOCUMENT_EXPORT, api.ExportQuery(cursor=page.next_cursor), token=token)
    except Exception:
        # The answer has begun (200): all that is left is to cut it off, so the zip is visibly broken.
        log.exception("export of user %s failed after %d documents", me.id, count)
        raise
    summary = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": started.isoformat(),
        "user": {"id": str(me.id), "email": me.email},
        "documents": count,
        "original_bytes": size,
        "categories": len(categories.items),
        "layout": LAYOUT,
    }
    yield z.json("export.json", summary)
    yield z.close()


async def _document(
    z: ZipStream, call: CallContext, token: str, store: Any, doc: api.ExportedDocument
) -> AsyncIterator[bytes]:
    base = f"documents/{doc.id}"
    name = original_name(doc)
    meta = doc.model_dump(mode="json", exclude={"object_name", "pages", "preview_pages", "rank", "snippet"})
    try:
        await store.get_info(doc.object_name)
        meta["original"] = {"file": name, "size": doc.size, "sha256": doc.sha256}
    except (ObjectNotFoundError, NotFoundError):  # one missing file does not spoil the rest of the export
        meta["original"] = None
        log.error("export: the original of document %s is missing from the store", doc.id)
    yield z.json(f"{base}/document.json", meta)
    with z.entry(f"{base}/pages.json") as out:
        out.write(b"[")
        following, first = 1, True
        while following:
            chunk: api.PagesChunk = await call(
                api.DOCUMENT_PAGES, api.PagesQuery(document_id=doc.id, from_page=following), token=token
            )
            for p in chunk.pages:
                out.write((b"\n" if first else b",\n") + p.model_dump_json().encode())
                first = False
            yield z.pipe.take()
            following = chunk.next_page or 0
        out.write(b"\n]\n")
    yield z.pipe.take()
    if meta["original"] is None:
        return
    with z.entry(f"{base}/{name}", stored=True) as out:
        async for piece in stream_object(store, doc.object_name):
            out.write(piece)
            yield z.pipe.take()
    yield z.pipe.take()
