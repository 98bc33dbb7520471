"""Streaming into and out of a JetStream Object Store without holding an object in memory.

nats-py's `ObjectStore.put` wants a whole buffer or a blocking reader (run on a thread), and `get`
without `writeinto` concatenates every chunk (quadratic on large objects). These speak the same
Object Store protocol chunk by chunk from async code: `ObjectWriter` for a body that arrives piece
by piece (an HTTP upload), `iter_object` for a response that leaves piece by piece (a download).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any, BinaryIO

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import APIError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DEFAULT_CHUNK_SIZE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
    ObjectStore,
)

from contracts import InsufficientStorage, Unavailable

from .logging import log_fields

MSG_ROLLUP_SUBJECT = "sub"
log = logging.getLogger(__name__)

STORE_FULL = 10077  # JetStream's "maximum bytes exceeded": the store reached its byte limit


def full_store(exc: BaseException) -> InsufficientStorage | None:
    """The error to answer when `exc` is the object store refusing a write because it is full."""
    if isinstance(exc, APIError) and exc.err_code == STORE_FULL:
        return InsufficientStorage(
            "The document store is full: its share of the storage budget (ATRIUM_STORAGE_BUDGET) is used "
            "up. Delete documents or ask an administrator for more space; nothing was stored."
        )
    return None


def digest_hex(info: api.ObjectInfo) -> str:
    """The SHA-256 of an object as lowercase hex (the store keeps it as `SHA-256=<urlsafe b64>`)."""
    raw = (info.digest or "").split("=", 1)[-1]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex() if raw else ""


class ObjectWriter:
    """Write one object chunk by chunk; `close()` publishes its meta entry, `abort()` purges what was sent."""

    def __init__(self, store: ObjectStore, name: str, chunk_size: int = OBJ_DEFAULT_CHUNK_SIZE):
        self.store = store
        self.js: Any = store._js
        self.name = name
        self.chunk_size = chunk_size
        self.nuid = self.js._nc._nuid.next().decode()
        self.chunk_subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=store._name, obj=self.nuid)
        self.hash = sha256()
        self.size = 0
        self.chunks = 0
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        self._pending += data
        while len(self._pending) >= self.chunk_size:
            await self._flush(bytes(self._pending[: self.chunk_size]))
            del self._pending[: self.chunk_size]

    async def _flush(self, payload: bytes) -> None:
        try:
            await self.js.publish(self.chunk_subject, payload)
        except APIError as exc:
            full = full_store(exc)
            if full is None:
                raise
            await self.abort()
            raise full from None
        self.chunks += 1

    @property
    def sha256_hex(self) -> str:
        return self.hash.hexdigest()

    async def close(self) -> api.ObjectInfo:
        if self._pending:
            await self._flush(bytes(self._pending))
            self._pending.clear()
        info = api.ObjectInfo(
            name=self.name,
            bucket=self.store._name,
            nuid=self.nuid,
            size=self.size,
            chunks=self.chunks,
            mtime=datetime.now(UTC).isoformat(),
            digest=OBJ_DIGEST_TEMPLATE.format(digest=base64.urlsafe_b64encode(self.hash.digest()).decode()),
            options=api.ObjectMetaOptions(max_chunk_size=self.chunk_size),
        )
        meta_subject = OBJ_META_PRE_TEMPLATE.format(
            bucket=self.store._name, obj=base64.urlsafe_b64encode(self.name.encode()).decode()
        )
        try:
            await self.js.publish(
                meta_subject,
                json.dumps(info.as_dict()).encode(),
                headers={api.Header.ROLLUP: MSG_ROLLUP_SUBJECT},
            )
        except Exception as exc:
            await self.abort()
            full = full_store(exc)
            if full is not None:
                raise full from None
            raise
        return info

    async def abort(self) -> None:
        self._pending.clear()
        try:
            await self.js.purge_stream(
                OBJ_STREAM_TEMPLATE.format(bucket=self.store._name), subject=self.chunk_subject
            )
        except Exception:
            pass  # nothing was sent, or NATS is away: the chunks have no meta entry and are never read


async def unfinished_chunks(store: ObjectStore) -> list[str]:
    """The chunk subjects no meta entry points to: writes under way, or cut off (the writer died before
    `close()` and could not `abort()`, e.g. the gateway killed mid-upload). One page of the server's subject
    list: up to 100,000 objects."""
    js: Any = store._js
    prefix = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=store._name, obj="")
    # The chunks first, then the meta entries: a write that finishes in between is seen finished.
    info = await js.stream_info(OBJ_STREAM_TEMPLATE.format(bucket=store._name), subjects_filter=f"{prefix}>")
    subjects = list(info.state.subjects or {})
    if not subjects:
        return []
    try:
        finished = {i.nuid for i in await store.list()}  # deleted objects too: their chunks are theirs
    except (NotFoundError, ObjectNotFoundError):
        finished = set()
    return [s for s in subjects if s.removeprefix(prefix) not in finished]


async def sweep_cut_off(store: ObjectStore, older_than_s: float) -> list[str]:
    """Purge the unfinished chunks whose newest chunk is older than `older_than_s` (a write still under way
    keeps adding chunks): they can never be read, they only take space. Returns the purged subjects."""
    js: Any = store._js
    stream = OBJ_STREAM_TEMPLATE.format(bucket=store._name)
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    swept = []
    for subject in await unfinished_chunks(store):
        try:
            newest = await js.get_msg(stream, subject=subject)
        except NotFoundError:
            continue  # purged meanwhile
        if newest.time is None or newest.time > cutoff:
            continue
        await js.purge_stream(stream, subject=subject)
        swept.append(subject)
    return swept


# How long a read waits for an object's next chunk. Waiting on `sub.messages` had no end: a chunk that never
# came (purged, or missed by the ordered consumer) would hold an event handler reading an extraction result,
# its message and its slot, for good; failing instead lets the event be redelivered.
CHUNK_WAIT_S = 30.0


async def iter_object(
    store: ObjectStore, name: str, chunk_wait_s: float = CHUNK_WAIT_S
) -> AsyncIterator[bytes]:
    """Yield an object's chunks in order, verifying its digest at the end; `Unavailable` when the store
    sends no chunk for `chunk_wait_s`."""
    info = await store.get_info(name)
    if info.size == 0:
        return
    sub = await store._js.subscribe(
        OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=store._name, obj=info.nuid), ordered_consumer=True
    )
    h = sha256()
    received = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=chunk_wait_s)
            except NatsTimeoutError:
                raise Unavailable(
                    f"The file store sent no part of {name} for {chunk_wait_s:g} s; try again."
                ) from None
            h.update(msg.data)
            received += len(msg.data)
            yield msg.data
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    if received != info.size or h.hexdigest() != digest_hex(info):
        raise ValueError(f"object {name} is corrupt: {received} of {info.size} bytes, digest mismatch")


# A read that stalls is started again this many times in all, with a fresh consumer: the stall is the ordered
# consumer's (nats-py's object-store reads share it), not the object's, and the next read of the same
# object normally runs through (CI saw one stalled read stop a worker's whole consumer for good).
READ_ATTEMPTS = 3


async def read_object_into(
    store: ObjectStore, name: str, target: BinaryIO, chunk_wait_s: float = CHUNK_WAIT_S
) -> None:
    """Write an object into `target` (a file or buffer at its start), verified; a read that stalls starts
    again from the beginning (`READ_ATTEMPTS`), then `Unavailable`. Every object read of an event handler
    goes through here, never nats-py's `get`: that one waits for a chunk without end."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        target.seek(0)
        target.truncate()
        try:
            async for chunk in iter_object(store, name, chunk_wait_s):
                target.write(chunk)
            return
        except Unavailable:
            if attempt == READ_ATTEMPTS:
                raise
            log_fields(
                log, logging.WARNING, "object read stalled; reading it again", object=name, attempt=attempt
            )


async def read_object(store: ObjectStore, name: str) -> bytes:
    """A small object (an extraction result) read into one buffer (`read_object_into`)."""
    buf = io.BytesIO()
    await read_object_into(store, name, buf)
    return buf.getvalue()


async def space_left(store: ObjectStore) -> int | None:
    """Bytes the object store may still take under its limit, or None when it has none."""
    info = await store._js.stream_info(OBJ_STREAM_TEMPLATE.format(bucket=store._name))
    if not info.config.max_bytes or info.config.max_bytes < 0:
        return None
    return max(0, info.config.max_bytes - (info.state.bytes or 0))


__all__ = [
    "ObjectWriter",
    "iter_object",
    "read_object",
    "read_object_into",
    "digest_hex",
    "full_store",
    "space_left",
    "sweep_cut_off",
    "unfinished_chunks",
    "ObjectNotFoundError",
    "NotFoundError",
]
