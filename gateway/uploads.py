"""Streaming multipart uploads straight into the Object Store, and downloads straight out of it.

The request body is parsed incrementally as it arrives (python-multipart's push parser over
`request.stream()`); each file part is written chunk by chunk to the `documents` bucket under a
generated id while its SHA-256 is computed, so no file is ever whole in memory. The first bytes say what
it is (content, not the name: `services/kit/media.py`): a PDF, or a JPEG, PNG or TIFF image (a scan from a
phone app), whose header must be readable and within the pixel limit (nothing is decoded here); anything else
is 415. The size limit stops the request with 413 while the client is still sending. Anything stored by a
request that fails is removed again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from contracts import Invalid, TooLarge, Unsupported
from contracts.docs_api import UploadPolicy
from contracts.documents import OBJECT_BUCKET, MediaType
from services.kit.bus import ensure_object_store
from services.kit.media import (
    IMAGE_HEAD_BYTES,
    SNIFF_BYTES,
    describe,
    image_size,
    max_image_megapixels,
    sniff,
)
from services.kit.objects import ObjectWriter, iter_object

MB = 1024 * 1024
MAX_FILES = 20
MAX_FIELD_BYTES = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the files themselves


@dataclass
class StoredFile:
    object_name: uuid.UUID
    filename: str
    size: int
    sha256: str
    media_type: MediaType


async def documents_store(request: Request) -> Any:
    """The `documents` Object Store over the gateway's NATS connection (looked up once per connection)."""
    bus = request.app.state.bus
    cached = getattr(request.app.state, "documents_store", None)
    if cached is None or cached[0] is not bus.nc:
        cached = (bus.nc, await ensure_object_store(bus.nc.jetstream(), OBJECT_BUCKET))
        request.app.state.documents_store = cached
    return cached[1]


def _boundary(request: Request) -> bytes:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise Invalid(
            "Send the files as multipart/form-data (one or more parts named 'file').",
            [{"field": "file", "message": "multipart/form-data required"}],
        )
    return params[b"boundary"]


@dataclass
class _Part:
    filename: str | None
    head: bytearray = field(default_factory=bytearray)
    writer: ObjectWriter | None = None
    object_name: uuid.UUID = field(default_factory=uuid.uuid4)
    size: int = 0
    media_type: MediaType | None = None


class _Receiver:
    """Turns parser callbacks (synchronous) into a list of steps the async loop then carries out."""

    def __init__(self, boundary: bytes):
        self.steps: list[tuple[str, Any]] = []
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self.steps.append(("part", dict(self._headers))),
                "on_part_data": lambda d, s, e: self.steps.append(("data", bytes(d[s:e]))),
                "on_part_end": lambda: self.steps.append(("end", None)),
            },
        )

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[bytes(self._field).decode("latin-1").lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        try:
            self.parser.write(chunk)
        except Exception as exc:
            raise Invalid(f"The multipart body is malformed ({type(exc).__name__}).") from None
        steps, self.steps = self.steps, []
        return steps


def _filename(headers: dict[str, bytes]) -> str | None:
    _, params = parse_options_header(headers.get("content-disposition", b""))
    if b"filename*" in params:  # RFC 5987: UTF-8''percent-encoded
        from urllib.parse import unquote

        raw = params[b"filename*"].decode("latin-1")
        return unquote(raw.split("''", 1)[-1])
    if b"filename" in params:
        return params[b"filename"].decode("utf-8", errors="replace")
    return None


async def receive_files(request: Request, policy: UploadPolicy) -> list[StoredFile]:
    """Stream every file part of the request into the Object Store; return what was stored."""
    boundary = _boundary(request)
    max_file = policy.max_file_bytes
    declared = request.headers.get("content-length")
    budget = (
        min(
            max_file * MAX_FILES,
            policy.storage_left_bytes if policy.storage_left_bytes is not None else max_file * MAX_FILES,
        )
        + MULTIPART_OVERHEAD
    )
    if declared and declared.isdigit() and int(declared) > budget:
        raise _too_large(
            policy, quota=policy.storage_left_bytes is not None and int(declared) <= max_file * MAX_FILES
        )
    store = await documents_store(request)
    receiver = _Receiver(boundary)
    stored: list[StoredFile] = []
    part: _Part | None = None
    field_bytes = 0
    total = 0
    try:
        async for chunk in request.stream():
            for step, value in receiver.feed(chunk):
                if step == "part":
                    part = _Part(filename=_filename(value))
                    if part.filename is not None and len(stored) >= MAX_FILES:
                        raise Invalid(f"Send at most {MAX_FILES} files per request.")
                elif step == "data" and part is not None:
                    if part.filename is None:  # a plain form field: not used, only bounded
                        field_bytes += len(value)
                        if field_bytes > MAX_FIELD_BYTES:
                            raise Invalid("Form fields besides the files are too large.")
                        continue
                    part.size += len(value)
                    total += len(value)
                    if part.size > max_file:
                        raise _too_large(policy)
                    if policy.storage_left_bytes is not None and total > policy.storage_left_bytes:
                        raise _too_large(policy, quota=True)
                    if part.writer is None:
                        part.head += value
                        if len(part.head) >= _head_bytes(part):
                            await _start(part, store)
                    else:
                        await part.writer.write(value)
                elif step == "end" and part is not None:
                    if part.filename is not None:
                        if part.writer is None:
                            await _start(part, store)
                        assert part.writer is not None
                        info = await part.writer.close()
                        assert part.media_type is not None
                        stored.append(
                            StoredFile(
                                part.object_name,
                                part.filename,
                                int(info.size or 0),
                                part.writer.sha256_hex,
                                part.media_type,
                            )
                        )
                    part = None
        if part is not None or receiver.parser.state != MultipartState.END:
            raise Invalid("The upload ended before the multipart body was complete.")
        if not stored:
            raise Invalid(
                "The request carries no file: send one or more parts named 'file' with a filename.",
                [{"field": "file", "message": "required"}],
            )
    except BaseException:
        if part is not None and part.writer is not None:
            await part.writer.abort()
        for done in stored:
            await remove(store, str(done.object_name))
        raise
    return stored


def _head_bytes(part: _Part) -> int:
    """How much of a part to hold before storing it: enough to tell what it is, and for an image its header."""
    if len(part.head) < SNIFF_BYTES:
        return SNIFF_BYTES
    return IMAGE_HEAD_BYTES if sniff(bytes(part.head[:SNIFF_BYTES])) not in (None, "application/pdf") else 0


def check_content(filename: str, head: bytes) -> MediaType:
    """What the file is (from its first bytes); 415 for anything but a PDF or a JPEG, PNG or TIFF image, 422
    for an image whose header is broken or larger than the pixel limit."""
    media_type = sniff(head[:SNIFF_BYTES])
    name = f"“{(filename or 'the file')[:100]}”"
    details = {"filename": (filename or "")[:200]}
    if media_type is None:
        raise Unsupported(
            f"{name} is {describe(head)}: upload a PDF, or a scan as a JPEG, PNG or TIFF image.", details
        )
    if media_type == "application/pdf":
        return media_type
    try:
        size = image_size(head, media_type)
    except ValueError as exc:
        raise Invalid(
            f"{name} is not a readable image: {exc}.", [{"field": "file", "message": str(exc)}]
        ) from None
    limit = max_image_megapixels()
    if size is not None and size[0] * size[1] > limit * 1e6:
        width, height = size
        raise Invalid(
            f"{name} is {width} × {height} pixels ({width * height / 1e6:.0f} megapixels), more than the "
            f"{limit:g}-megapixel limit for images: scan it at a lower resolution.",
            [{"field": "file", "message": "too many pixels"}],
        )
    return media_type


async def _start(part: _Part, store: Any) -> None:
    part.media_type = check_content(part.filename or "", bytes(part.head))
    part.writer = ObjectWriter(store, str(part.object_name))
    await part.writer.write(bytes(part.head))
    part.head.clear()


def _too_large(policy: UploadPolicy, *, quota: bool = False) -> TooLarge:
    if quota and policy.storage_left_bytes is not None:
        left = max(policy.storage_left_bytes, 0) / MB
        return TooLarge(
            f"This upload exceeds your storage quota (quota_storage_mb_per_user): {left:.1f} MB left.",
            {"limit": "quota_storage_mb_per_user", "left_bytes": policy.storage_left_bytes},
        )
    return TooLarge(
        f"A file is larger than the upload limit of {policy.max_file_bytes // MB} MB (max_upload_mb).",
        {"limit": "max_upload_mb", "max_bytes": policy.max_file_bytes},
    )


async def remove(store: Any, name: str) -> None:
    try:
        await store.delete(name)
    except Exception:
        pass  # already gone, or the store is away: the object has no document row and is never served


async def stream_object(store: Any, name: str) -> AsyncIterator[bytes]:
    async for chunk in iter_object(store, name):
        yield chunk


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / 5987)."""
    from urllib.parse import quote

    ascii_name = (
        filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
