"""The AI worker: the durable consumer of `events.docs.extracted`, the settings Rpcs, and its deps."""

from __future__ import annotations

import os
import socket

from contracts.ai import AI_SETTINGS_GET, AI_SETTINGS_TEST, AI_SETTINGS_UPDATE
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    OBJECT_BUCKET,
    SETTINGS_BUCKET,
    SETTINGS_CHANGED,
    DocumentAnalyzed,
    DocumentFailed,
    DocumentProcessing,
    DocumentProgress,
    ExtractionResult,
    SettingsChanged,
)
from services.docs.settings_store import SettingsStore
from services.docs.superseded import superseded_check
from services.extraction import metrics as pipeline_metrics
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.jetstream import ensure_kv, ensure_object_store
from services.kit.wiring import Consumer, EventTable, RpcTable

from . import handlers
from .handlers import AiDeps
from .providers.network import allow_local_servers_from_env

DURABLE = "ai-analyze"
# Attempts 2, 5, 15, 30 and 60 s apart (services/kit/bus.py): a provider away for a minute or two (a restart,
# an outage) costs time, not a failed document.
MAX_DELIVER = 6
# Long enough for a slow model (request timeout up to 600 s is allowed, default 60 s, plus retries).
ACK_WAIT_S = 300.0

RPCS: RpcTable[AiDeps] = {
    AI_SETTINGS_GET: handlers.get_settings,
    AI_SETTINGS_UPDATE: handlers.update_settings,
    AI_SETTINGS_TEST: handlers.test_provider,
}
EVENTS: EventTable[AiDeps] = {
    DOCUMENT_EXTRACTED: Consumer(
        handlers.analyze_document,
        DURABLE,
        max_deliver=MAX_DELIVER,
        ack_wait_s=ACK_WAIT_S,
        give_up=handlers.give_up,
    ),
}


async def make_deps(svc: Service) -> AiDeps:
    await ensure_kv(svc.js, SETTINGS_BUCKET, history=5, manage=True)  # the ai service writes the settings
    store = SettingsStore(svc.js, svc.settings.platform_secret)
    await store.start()
    svc.on_shutdown.append(store.stop)
    objects = await ensure_object_store(svc.js, OBJECT_BUCKET)

    async def settings_loaded() -> str:
        return "ok" if store.kv is not None else "not loaded"

    svc.health_checks["settings"] = settings_loaded

    async def load_result(name: str) -> ExtractionResult:
        return await handlers.read_result(objects, name)

    # Msg ids are deduplicated across the whole DOCUMENTS stream: each carries its kind, or an analyzed event
    # would be dropped as a duplicate of the run's uploaded event (`<document_id>:<run_id>`).
    async def publish_processing(e: DocumentProcessing) -> None:
        await svc.publish(
            DOCUMENT_PROCESSING, e, msg_id=f"processing:analyze:{e.document_id}:{e.run_id}:{e.attempt}"
        )
        pipeline_metrics.observe(e)

    async def publish_analyzed(e: DocumentAnalyzed) -> None:
        await svc.publish(DOCUMENT_ANALYZED, e, msg_id=f"analyzed:{e.document_id}:{e.run_id}")
        pipeline_metrics.observe(e)

    async def publish_failed(e: DocumentFailed) -> None:
        await svc.publish(DOCUMENT_FAILED, e, msg_id=f"failed:analyze:{e.document_id}:{e.run_id}:{e.attempt}")
        pipeline_metrics.observe(e)

    async def publish_progress(owner_id: str, document_id: str, p: DocumentProgress) -> None:
        await svc.nc.publish(DOCUMENT_PROGRESS.subject(owner_id, document_id), p.model_dump_json().encode())

    async def publish_settings_changed(e: SettingsChanged) -> None:
        await svc.publish(
            SETTINGS_CHANGED, e, msg_id=f"settings_changed:{e.revision}:{e.changed_at.timestamp()}"
        )

    providers = handlers.ProviderCache()
    svc.on_shutdown.append(providers.close)
    return AiDeps(
        settings=store,
        load_result=load_result,
        publish_processing=publish_processing,
        publish_analyzed=publish_analyzed,
        publish_failed=publish_failed,
        publish_progress=publish_progress,
        worker=f"ai@{socket.gethostname()}:{os.getpid()}",
        max_deliver=MAX_DELIVER,
        providers=providers,
        deadline_s=ACK_WAIT_S - 30,
        superseded=await superseded_check(svc.js),
        allow_local_servers=allow_local_servers_from_env(),
        publish_settings_changed=publish_settings_changed,
    )


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    svc.bind(make_deps, rpcs=RPCS, events=EVENTS)
    return svc
