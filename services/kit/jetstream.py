"""JetStream setup every process may need: streams, KV buckets and object stores, created idempotently.

A leaf (only nats-py and the contracts): the bus, the token verifier, the gateway and the CLI use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError

from contracts.base import Stream


def js_replicas() -> int:
    """Copies of every stream, KV bucket and object store: 1 on one server, 3 in a cluster
    (`ATRIUM_JS_REPLICAS`, see infra/nats/cluster.py)."""
    return max(1, int(os.environ.get("ATRIUM_JS_REPLICAS", "1")))


async def ensure_streams(js: Any, streams: Sequence[Stream]) -> None:
    """Create or update each stream; safe to run from every service at every start."""
    for s in streams:
        cfg = StreamConfig(
            name=s.name,
            subjects=list(s.subjects),
            storage=StorageType.FILE,
            max_age=s.max_age_days * 86400,
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
            except Exception as exc:  # another service won the race
                if "already in use" not in str(exc):
                    raise


async def ensure_kv(js: Any, bucket: str, *, history: int = 1, ttl_s: float | None = None) -> Any:
    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    history=history,
                    ttl=ttl_s,
                    storage=StorageType.FILE,
                    replicas=js_replicas(),
                )
            )
        except Exception:
            return await js.key_value(bucket)


async def ensure_object_store(js: Any, bucket: str) -> Any:
    try:
        return await js.object_store(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_object_store(
                bucket, ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE, replicas=js_replicas())
            )
        except Exception:
            return await js.object_store(bucket)
