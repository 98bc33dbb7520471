"""The text worker's subscribers: a durable pull consumer on `events.docs.uploaded`, shared by every replica."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts import Unauthenticated
from contracts.base import Event
from contracts.docs_api import APP_KEY
from contracts.documents import (
    DOCUMENT_PROGRESS,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    PREVIEW_GRANT,
    PREVIEW_RENDER,
    DocumentProgress,
    DocumentUploaded,
    PreviewsRendered,
    RenderPreviews,
)
from services.kit.apps import AppAccessGuard
from services.kit.bus import Ctx, Service, ensure_kv, ensure_object_store
from services.kit.config import ServiceSettings
from services.kit.grants import verify_grant

from . import handlers
from .config import ExtractConfig
from .pool import ExtractPool

RUNS_BUCKET = "extract_runs"
RUN_MARKER_TTL_S = 30 * 86400  # far beyond the stream's duplicate window and any redelivery
DURABLE = "extract"


def create_service(settings: ServiceSettings, config: ExtractConfig | None = None) -> Service:
    config = config or ExtractConfig.from_env()
    # Tokens are verified for the one Rpc, `extract.preview.render` (the owner's token, forwarded by docs).
    svc = Service(settings)
    guard = AppAccessGuard(svc, APP_KEY, app_name="Documents")
    pool = ExtractPool(
        config.children,
        config.limits,
        engine=config.engine,
        heartbeat_every_s=max(config.ack_wait_s / 3, 1.0),
    )
    # One child for page previews, started on the first request: rendering under the same limits as
    # extraction, but never queued behind it.
    previews = ExtractPool(1, config.limits, engine=config.engine)
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
            pool=pool,
            objects=await ensure_object_store(svc.js, OBJECT_BUCKET),
            runs=await ensure_kv(svc.js, RUNS_BUCKET, ttl_s=RUN_MARKER_TTL_S),
            publish=publish,
            progress=progress,
            worker=worker,
            tmp_dir=tmp_dir,
            max_bytes=config.max_mb * 1024 * 1024,
            previews=previews,
            originals=handlers.RecentOriginals(tmp_dir),
        )

    async def shutdown() -> None:
        await pool.stop()
        await previews.stop()
        if "deps" in state:
            state["deps"].originals.clear()

    async def pool_health() -> str:
        return "ok" if pool.child_pids() else "no extraction child"

    svc.on_startup.append(startup)
    svc.on_shutdown.append(shutdown)
    svc.health_checks["pool"] = pool_health
    svc.worker_id = worker  # type: ignore[attr-defined]
    svc.pool = pool  # type: ignore[attr-defined]

    async def give_up(event: DocumentUploaded, exc: BaseException, ctx: Ctx) -> None:
        await handlers.give_up(event, exc, state["deps"], ctx)

    @svc.rpc(PREVIEW_RENDER)
    async def on_render_previews(cmd: RenderPreviews, ctx: Ctx) -> PreviewsRendered:
        if ctx.actor is not None:
            await guard.check(
                ctx.actor
            )  # a Documents subject like any other: refused without the app's grant
        elif not (
            cmd.grant
            and verify_grant(
                settings.platform_secret, PREVIEW_GRANT, f"{cmd.document_id}:{cmd.run_id}", cmd.grant
            )
        ):  # a share link's visitor has no token: the documents service signed the request instead
            raise Unauthenticated("A preview needs the reader's token or a grant from the documents service.")
        return await handlers.render_previews(cmd, ctx.actor, state["deps"])

    @svc.on_event(
        DOCUMENT_UPLOADED,
        durable=DURABLE,
        max_deliver=config.max_deliver,
        ack_wait_s=config.ack_wait_s,
        give_up=give_up,
    )
    async def on_uploaded(event: DocumentUploaded, ctx: Ctx) -> None:
        await handlers.extract_uploaded(event, state["deps"], ctx)

    return svc
