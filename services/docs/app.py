"""The documents service's subscribers: thin translations from bus messages to handlers, plus its loops
(the outbox relay and the task-retention clean-up)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from nats.js.errors import NotFoundError, ObjectNotFoundError

from contracts import REGISTRY, NotFound, Unavailable
from contracts import docs_api as api
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    OBJECT_BUCKET,
    PREVIEW_RENDER,
    DocumentProgress,
    PreviewsRendered,
    RenderPreviews,
)
from contracts.permissions import AppManifest
from services.docs.settings_store import SettingsStore
from services.kit.apps import AppAccessGuard, announce_app
from services.kit.bus import Ctx, Service, ensure_object_store
from services.kit.client import call
from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.logging import log_fields
from services.kit.objects import digest_hex, read_object
from services.kit.security import Actor

from . import handlers

log = logging.getLogger("atrium.docs")

RELAY_IDLE_S = 1.0
RETENTION_EVERY_S = 3600.0
MANIFEST = AppManifest(
    key=api.APP_KEY,
    name="Documents",
    icon="file-text",
    route="/documents",
    default_grant=True,
    description="Upload PDFs, extract their text and fields, search and categorise them.",
)


class NatsBlobs(handlers.Blobs):
    def __init__(self, svc: Service):
        self.svc = svc
        self._store: Any = None

    async def store(self) -> Any:
        if self._store is None:
            self._store = await ensure_object_store(self.svc.js, OBJECT_BUCKET)
        return self._store

    async def info(self, name: str) -> tuple[int, str]:
        try:
            info = await (await self.store()).get_info(name)
        except (ObjectNotFoundError, NotFoundError):
            raise NotFound("The uploaded file is not in the store; upload it again.") from None
        return int(info.size or 0), digest_hex(info)

    async def read(self, name: str) -> bytes:
        return await read_object(await self.store(), name)

    async def delete(self, name: str) -> None:
        try:
            await (await self.store()).delete(name)
        except (ObjectNotFoundError, NotFoundError):
            pass
        except Exception as exc:
            raise Unavailable(f"The file store is not reachable ({type(exc).__name__}); try again.") from None


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    db = Database(settings.database_url, settings.schema)
    svc.health_checks["postgres"] = db.ping
    blobs = NatsBlobs(svc)
    guard = AppAccessGuard(svc, api.APP_KEY, app_name="Documents")
    announce_app(svc, MANIFEST)
    relay_wakeup = asyncio.Event()
    loops: list[asyncio.Task[None]] = []
    store: dict[str, SettingsStore] = {}

    async def check_access(actor: Actor) -> None:
        await guard.check(actor)

    async def publish_progress(owner: UUID, progress: DocumentProgress) -> None:
        await svc.nc.publish(
            DOCUMENT_PROGRESS.subject(str(owner), str(progress.document_id)),
            progress.model_dump_json().encode(),
        )

    def current_settings():  # type: ignore[no-untyped-def]
        return store["documents"].current

    async def render_previews(cmd: RenderPreviews, token: str) -> PreviewsRendered:
        # A first batch fetches the original and may start the worker's preview child: allow for both.
        return await call(svc.nc, PREVIEW_RENDER, cmd, token=token, timeout=60)  # type: ignore[no-any-return]

    deps = handlers.DocsDeps(
        db=db,
        blobs=blobs,
        settings=current_settings,
        check_access=check_access,
        wake_relay=relay_wakeup.set,
        publish_progress=publish_progress,
        render_previews=render_previews,
    )

    async def publish_outbox(subject: str, payload: dict[str, Any], msg_id: str) -> None:
        desc = REGISTRY.events[subject]
        await svc.publish(desc, desc.model.model_validate(payload), msg_id=msg_id)

    async def relay_loop() -> None:
        while True:
            try:
                while await handlers.relay_outbox(db, publish_outbox):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or Postgres away: the rows wait and the next pass sends them
                log_fields(log, logging.WARNING, "outbox relay failed; retrying", error=repr(exc))
            relay_wakeup.clear()
            try:
                await asyncio.wait_for(relay_wakeup.wait(), RELAY_IDLE_S)
            except TimeoutError:
                pass

    async def retention_loop() -> None:
        while True:
            try:
                removed = await handlers.apply_retention(db, current_settings())
                if removed:
                    log_fields(log, logging.INFO, "old tasks removed", count=removed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_fields(log, logging.WARNING, "task retention failed", error=repr(exc))
            await asyncio.sleep(RETENTION_EVERY_S)

    async def start() -> None:
        store["documents"] = SettingsStore(svc.js, settings.platform_secret)
        await store["documents"].start()
        await blobs.store()
        loops.append(asyncio.create_task(relay_loop(), name="docs-outbox-relay"))
        loops.append(asyncio.create_task(retention_loop(), name="docs-retention"))

    async def stop() -> None:
        for task in loops:
            task.cancel()
        if "documents" in store:
            await store["documents"].stop()
        await db.dispose()

    svc.on_startup.append(start)
    svc.on_shutdown.append(stop)

    def rpc(desc: Any, handler: Any) -> None:
        async def subscriber(cmd: Any, ctx: Ctx) -> Any:
            return await handler(cmd, ctx, deps)

        svc.rpc(desc)(subscriber)

    rpc(api.UPLOAD_PREPARE, handlers.upload_policy)
    rpc(api.DOCUMENT_CREATE, handlers.create_document)
    rpc(api.DOCUMENT_LIST, handlers.list_documents)
    rpc(api.DOCUMENT_GET, handlers.get_document)
    rpc(api.DOCUMENT_UPDATE, handlers.update_document)
    rpc(api.DOCUMENT_DELETE, handlers.delete_document)
    rpc(api.DOCUMENT_DOWNLOAD, handlers.download_document)
    rpc(api.DOCUMENT_PREVIEW, handlers.preview_page)
    rpc(api.DOCUMENT_REPROCESS, handlers.reprocess_document)
    rpc(api.DOCUMENT_BULK, handlers.bulk)
    rpc(api.CATEGORY_LIST, handlers.list_categories)
    rpc(api.CATEGORY_CREATE, handlers.create_category)
    rpc(api.CATEGORY_UPDATE, handlers.update_category)
    rpc(api.CATEGORY_DELETE, handlers.delete_category)
    rpc(api.TASK_LIST, handlers.list_tasks)
    rpc(api.TASK_STATS, handlers.task_stats)
    rpc(api.TASK_RETRY, handlers.retry_task)
    rpc(api.EVENTS_GRANT, handlers.events_grant)
    rpc(api.DOCUMENT_REPLAY, handlers.replay_documents)

    def consume(desc: Any, handler: Any, durable: str) -> None:
        async def subscriber(event: Any, ctx: Ctx) -> None:
            await handler(event, ctx, deps)

        svc.on_event(desc, durable=durable, max_deliver=10)(subscriber)

    consume(DOCUMENT_PROCESSING, handlers.on_processing, "docs-processing")
    consume(DOCUMENT_EXTRACTED, handlers.on_extracted, "docs-extracted")
    consume(DOCUMENT_ANALYZED, handlers.on_analyzed, "docs-analyzed")
    consume(DOCUMENT_FAILED, handlers.on_failed, "docs-failed")

    svc.docs_deps = deps  # type: ignore[attr-defined]  # tests drive handlers with the live dependencies
    return svc
