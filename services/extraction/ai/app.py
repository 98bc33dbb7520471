"""The AI worker's subscribers: the durable consumer of `events.docs.extracted` and the settings Rpcs."""

from __future__ import annotations

import os
import socket
from typing import Any

from contracts import Empty
from contracts.ai import AI_SETTINGS_GET, AI_SETTINGS_TEST, AI_SETTINGS_UPDATE, ProviderTest
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    OBJECT_BUCKET,
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentFailed,
    DocumentProcessing,
    DocumentProgress,
    DocumentsSettingsUpdate,
)
from services.docs.settings_store import SettingsStore
from services.kit.bus import Ctx, Service, ensure_object_store
from services.kit.config import ServiceSettings

from . import handlers

DURABLE = "ai-analyze"
MAX_DELIVER = 4
# Long enough for a slow model (request timeout up to 600 s is allowed, default 60 s, plus retries).
ACK_WAIT_S = 300.0


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    store = SettingsStore(None, settings.platform_secret)
    objects: dict[str, Any] = {}

    async def start_store() -> None:
        store.js = svc.js
        await store.start()
        objects["store"] = await ensure_object_store(svc.js, OBJECT_BUCKET)

    svc.on_startup.append(start_store)
    svc.on_shutdown.append(store.stop)

    async def settings_loaded() -> str:
        return "ok" if store.kv is not None else "not loaded"

    svc.health_checks["settings"] = settings_loaded

    async def load_result(name: str):
        return await handlers.read_result(objects["store"], name)

    # Msg ids are deduplicated across the whole DOCUMENTS stream: each carries its kind, or an analyzed event
    # would be dropped as a duplicate of the run's uploaded event (`<document_id>:<run_id>`).
    async def publish_processing(e: DocumentProcessing) -> None:
        await svc.publish(
            DOCUMENT_PROCESSING, e, msg_id=f"processing:analyze:{e.document_id}:{e.run_id}:{e.attempt}"
        )

    async def publish_analyzed(e: DocumentAnalyzed) -> None:
        await svc.publish(DOCUMENT_ANALYZED, e, msg_id=f"analyzed:{e.document_id}:{e.run_id}")

    async def publish_failed(e: DocumentFailed) -> None:
        await svc.publish(DOCUMENT_FAILED, e, msg_id=f"failed:analyze:{e.document_id}:{e.run_id}:{e.attempt}")

    async def publish_progress(owner_id: str, document_id: str, p: DocumentProgress) -> None:
        await svc.nc.publish(DOCUMENT_PROGRESS.subject(owner_id, document_id), p.model_dump_json().encode())

    deps = handlers.AiDeps(
        settings=store,
        load_result=load_result,
        publish_processing=publish_processing,
        publish_analyzed=publish_analyzed,
        publish_failed=publish_failed,
        publish_progress=publish_progress,
        worker=f"ai@{socket.gethostname()}:{os.getpid()}",
        max_deliver=MAX_DELIVER,
        providers=handlers.ProviderCache(),
        deadline_s=ACK_WAIT_S - 30,
    )

    svc.on_shutdown.append(deps.providers.close)

    async def give_up(event: DocumentExtracted, exc: BaseException, ctx: Ctx) -> None:
        await handlers.give_up(event, exc, deps, ctx.attempt)

    @svc.on_event(
        DOCUMENT_EXTRACTED, durable=DURABLE, max_deliver=MAX_DELIVER, ack_wait_s=ACK_WAIT_S, give_up=give_up
    )
    async def on_extracted(event: DocumentExtracted, ctx: Ctx) -> None:
        await handlers.analyze_document(event, deps, ctx.attempt)

    @svc.rpc(AI_SETTINGS_GET)
    async def get_settings(cmd: Empty, ctx: Ctx):
        return await handlers.get_settings(cmd, store)

    @svc.rpc(AI_SETTINGS_UPDATE)
    async def update_settings(cmd: DocumentsSettingsUpdate, ctx: Ctx):
        return await handlers.update_settings(cmd, store)

    @svc.rpc(AI_SETTINGS_TEST)
    async def test_settings(cmd: ProviderTest, ctx: Ctx):
        return await handlers.test_provider(cmd, store)

    return svc
