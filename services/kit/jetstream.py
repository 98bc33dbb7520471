"""JetStream setup every process may need: streams, KV buckets and object stores, created idempotently.

A leaf (only nats-py and the contracts): the bus, the token verifier, the gateway and the CLI use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nats.js.api import DiscardPolicy, KeyValueConfig, ObjectStoreConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError

from contracts.base import Stream

from .storage import limit_for

NO_ROOM = 10047  # JetStream: "insufficient storage resources available"


def _no_room(exc: Exception, name: str) -> None:
    """Raise a plain-words error when the server cannot reserve a stream's limit; return otherwise."""
    if getattr(exc, "err_code", None) == NO_ROOM:
        raise RuntimeError(
            f"nats-server cannot reserve {limit_for(name)} bytes for {name}: its JetStream store is smaller than "
            "ATRIUM_STORAGE_BUDGET. Lower the budget, or give nats-server more (jetstream max_file_store)."
        ) from exc


async def _exists(js: Any, stream: str) -> bool:
    """Whether the stream (a bucket's or an object store's too) is there: when two processes create it at
    once, the loser's create fails — with "insufficient storage resources" when it has a byte limit, the
    winner's reservation counted against it — but what it wanted exists."""
    try:
        await js.stream_info(stream)
    except NotFoundError:
        return False
    return True


def js_replicas() -> int:
    """Copies of every stream, KV bucket and object store: 1 on one server, 3 in a cluster
    (`ATRIUM_JS_REPLICAS`, see infra/nats/cluster.py)."""
    return max(1, int(os.environ.get("ATRIUM_JS_REPLICAS", "1")))


async def ensure_streams(js: Any, streams: Sequence[Stream]) -> None:
    """Create or update each stream, with its byte limit from the storage budget (services/kit/storage.py;
    when full, its oldest events go); safe to run from every service at every start."""
    for s in streams:
        cfg = StreamConfig(
            name=s.name,
            subjects=list(s.subjects),
            storage=StorageType.FILE,
            max_age=s.max_age_days * 86400,
            max_bytes=limit_for(s.name) or -1,
            discard=DiscardPolicy.OLD,
            duplicate_window=s.duplicate_window_s,
            description=s.summary or None,
            num_replicas=js_replicas(),
        )
        try:
            await js.stream_info(s.name)
            await js.update_stream(cfg)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except Exception as exc:
                if await _exists(js, s.name):  # another process won the race
                    continue
                _no_room(exc, s.name)
                raise
        except Exception as exc:
            _no_room(exc, s.name)
            raise


async def keep_limit(js: Any, stream: str) -> None:
    """Bring an existing bucket's byte limit to the budget's (a bucket created before there was one, or
    under another budget). Only a process that may write the bucket may change it (infra/nats)."""
    limit = limit_for(stream)
    if limit is None:
        return
    info = await js.stream_info(stream)
    if info.config.max_bytes != limit:
        info.config.max_bytes = limit
        await js.update_stream(info.config)


async def ensure_kv(
    js: Any, bucket: str, *, history: int = 1, ttl_s: float | None = None, manage: bool = False
) -> Any:
    """The KV bucket, created with its byte limit if missing (refusing writes when full); `manage` (its
    writer) also corrects the limit of an existing one."""
    try:
        kv = await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    history=history,
                    ttl=ttl_s,
                    max_bytes=limit_for(f"KV_{bucket}"),
                    storage=StorageType.FILE,
                    replicas=js_replicas(),
                )
            )
        except Exception as exc:
            if await _exists(js, f"KV_{bucket}"):  # another process won the race
                return await js.key_value(bucket)
            _no_room(exc, f"KV_{bucket}")
            raise
    if manage:
        await keep_limit(js, f"KV_{bucket}")
    return kv


async def ensure_object_store(js: Any, bucket: str, *, manage: bool = False) -> Any:
    """The object store, created with its byte limit if missing (refusing writes when full); `manage` (a
    writer) also corrects the limit of an existing one."""
    try:
        store = await js.object_store(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_object_store(
                bucket,
                ObjectStoreConfig(
                    bucket=bucket,
                    max_bytes=limit_for(f"OBJ_{bucket}"),
                    storage=StorageType.FILE,
                    replicas=js_replicas(),
                ),
            )
        except Exception as exc:
            if await _exists(js, f"OBJ_{bucket}"):  # another process won the race
                return await js.object_store(bucket)
            _no_room(exc, f"OBJ_{bucket}")
            raise
    if manage:
        await keep_limit(js, f"OBJ_{bucket}")
    return store
