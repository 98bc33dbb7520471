"""The text worker's subscribers: a durable pull consumer on `events.docs.uploaded`, shared by every replica."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts.base import Event
from contracts.documents import (
    DOCUMENT_PROGRESS,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    DocumentProgress,
    DocumentUploaded,
)
from services.kit.bus import Ctx, Service, ensure_kv, ensure_object_store
from services.kit.config import ServiceSettings

from . import handlers
from .config import ExtractConfig
from .pool import ExtractPool

RUNS_BUCKET = "extract_runs"
RUN_MARKER_TTL_S = 30 * 86400  # far beyond the stream's duplicate window and any redelivery
DURABLE = "extract"


def create_service(settings: ServiceSettings, config: ExtractConfig | None = None) -> Service:
    config = config or ExtractConfig.from_env()
    # Nothing here takes a user's token: the worker only consumes events and publishes its own.
    svc = Service(settings, verify_tokens=False)
    pool = ExtractPool(config.children, config.limits, engine=config.engine,
                       heartbeat_every_s=max(config.ack_wait_s / 3, 1.0))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    state: dict[str, Any] = {}

    async def publish(desc: Event[Any], event: BaseModel, msg_id: str) -> None:
        await svc.publish(desc, event, msg_id=msg_id)

    async def progress(event: DocumentUploaded, update: DocumentProgress) -> None:
        subject = DOCUMENT_PROGRESS.subject(str(event.owner_id), str(event.document_id))
        await svc.nc.publish(subject, update.model_dump_json().encode())

    async def startup() -> None:
        tmp_dir = Path(tempfile.gettempdir()) / "atrium-extract"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        await pool.start()
        state["deps"] = handlers.Deps(
            pool=pool, objects=await ensure_object_store(svc.js, OBJECT_BUCKET),
            runs=await ensure_kv(svc.js, RUNS_BUCKET, ttl_s=RUN_MARKER_TTL_S),
            publish=publish, progress=progress, worker=worker, tmp_dir=tmp_dir,
            max_bytes=config.max_mb * 1024 * 1024)

    async def pool_health() -> str:
        return "ok" if pool.child_pids() else "no extraction child"

    svc.on_startup.append(startup)
    svc.on_shutdown.append(pool.stop)
    svc.health_checks["pool"] = pool_health
    svc.worker_id = worker  # type: ignore[attr-defined]
    svc.pool = pool  # type: ignore[attr-defined]

    async def give_up(event: DocumentUploaded, exc: BaseException, ctx: Ctx) -> None:
        await handlers.give_up(event, exc, state["deps"], ctx)

    @svc.on_event(DOCUMENT_UPLOADED, durable=DURABLE, max_deliver=config.max_deliver,
                  ack_wait_s=config.ack_wait_s, give_up=give_up)
    async def on_uploaded(event: DocumentUploaded, ctx: Ctx) -> None:
        await handlers.extract_uploaded(event, state["deps"], ctx)

    return svc
