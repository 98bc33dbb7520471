"""The text worker: a durable pull consumer on `events.docs.uploaded`, shared by every replica, the page
preview Rpc, and its dependency factory."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts.base import Event
from contracts.docs_api import APP_KEY
from contracts.documents import (
    DOCUMENT_PROGRESS,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    OCR_ENGINES_BUCKET,
    OCR_ENGINES_RENEW_S,
    OCR_ENGINES_TTL_S,
    PREVIEW_RENDER,
    DocumentProgress,
    DocumentUploaded,
)
from services.docs.settings_store import SettingsStore
from services.docs.superseded import superseded_check
from services.extraction import metrics as pipeline_metrics
from services.extraction.ai.providers.network import allow_local_servers_from_env
from services.kit.apps import AppAccessGuard
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.jetstream import ensure_kv, ensure_object_store
from services.kit.wiring import Consumer, EventTable, Loop, RpcTable

from . import handlers
from .config import ExtractConfig, ocr_options
from .handlers import Deps
from .pool import ExtractPool

RUNS_BUCKET = "extract_runs"
RUN_MARKER_TTL_S = 30 * 86400  # far beyond the stream's duplicate window and any redelivery
DURABLE = "extract"

RPCS: RpcTable[Deps] = {PREVIEW_RENDER: handlers.render_previews}
LOOPS: list[Loop[Deps]] = [
    Loop("ocr-engine", handlers.announce_ocr_engine, every_s=OCR_ENGINES_RENEW_S, run_at_start=True)
]


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
        child_uid=config.child_uid,
    )
    # One child for page previews, started on the first request: rendering under the same limits as
    # extraction, but never queued behind it.
    previews = ExtractPool(1, config.limits, engine=config.engine, child_uid=config.child_uid)

    async def pool_health() -> str:
        return "ok" if pool.child_pids() else "no extraction child"

    svc.health_checks["pool"] = pool_health

    async def make_deps(svc: Service) -> Deps:
        async def publish(desc: Event[Any], event: BaseModel, msg_id: str) -> None:
            await svc.publish(desc, event, msg_id=msg_id)
            pipeline_metrics.observe(event)

        async def progress(event: DocumentUploaded, update: DocumentProgress) -> None:
            subject = DOCUMENT_PROGRESS.subject(str(event.owner_id), str(event.document_id))
            await svc.nc.publish(subject, update.model_dump_json().encode())

        tmp_dir = Path(tempfile.gettempdir()) / "atrium-extract"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # The Documents settings, watched: OCR mode, languages, provider and page limit per document.
        store = SettingsStore(svc.js, svc.settings.platform_secret)
        await store.start()
        svc.on_shutdown.append(store.stop)
        await pool.start()
        deps = Deps(
            pool=pool,
            objects=await ensure_object_store(svc.js, OBJECT_BUCKET),
            runs=await ensure_kv(svc.js, RUNS_BUCKET, ttl_s=RUN_MARKER_TTL_S, manage=True),
            publish=publish,
            progress=progress,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            tmp_dir=tmp_dir,
            max_bytes=config.max_mb * 1024 * 1024,
            previews=previews,
            originals=handlers.RecentOriginals(tmp_dir),
            check_access=guard.check,
            superseded=await superseded_check(svc.js),
            ocr_options=lambda: ocr_options(store.current, store.ocr_api_key(), config.ocr),
            allow_local_servers=allow_local_servers_from_env(),
            engines=await ensure_kv(svc.js, OCR_ENGINES_BUCKET, ttl_s=OCR_ENGINES_TTL_S),
        )

        async def shutdown() -> None:
            await pool.stop()
            await previews.stop()
            deps.originals.clear()

        svc.on_shutdown.append(shutdown)
        return deps

    events: EventTable[Deps] = {
        DOCUMENT_UPLOADED: Consumer(
            handlers.extract_uploaded,
            DURABLE,
            max_deliver=config.max_deliver,
            ack_wait_s=config.ack_wait_s,
            give_up=handlers.give_up,
        ),
    }
    svc.bind(make_deps, rpcs=RPCS, events=events, loops=LOOPS)
    return svc
