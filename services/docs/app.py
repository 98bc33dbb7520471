"""The documents service: which handler answers each Rpc and consumes each pipeline event, its loop, and
the dependencies the handlers get (built once the service is connected)."""

from __future__ import annotations

import functools
import os
from uuid import UUID

from contracts import Empty, sharing
from contracts import docs_api as api
from contracts.auth import USER_CHANGED, USER_DELETED, USER_REGISTERED
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_OCR_PROGRESS,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    OBJECT_BUCKET,
    PREVIEW_RENDER,
    SETTINGS_CHANGED,
    DocumentProgress,
    PreviewsRendered,
    RenderPreviews,
)
from contracts.ops import STACK_RESTORED
from contracts.permissions import GROUP_DIRECTORY, MY_GROUPS, PERMISSIONS_CHANGED, AppManifest
from contracts.streams import DOCUMENTS_STREAM
from services.kit.apps import AppAccessGuard, PermissionsFollowingCache, announce_app
from services.kit.bus import Service, ensure_object_store
from services.kit.client import call
from services.kit.config import ServiceSettings
from services.kit.ratelimit import prune_rate_limits
from services.kit.security import Actor
from services.kit.wiring import Consumer, EventTable, Loop, RpcTable

from . import metrics as docs_metrics
from . import tables
from .blobs import NatsBlobs
from .handlers import (
    bulk,
    categories,
    directory,
    documents,
    export,
    files,
    housekeeping,
    links,
    pipeline,
    runs,
    system,
    tasks,
    uploads,
)
from .handlers import (
    sharing as shares,
)
from .handlers.common import DocsDeps
from .settings_store import SettingsStore
from .superseded import superseded_marker

MANIFEST = AppManifest(
    key=api.APP_KEY,
    name="Documents",
    icon="file-text",
    route="/documents",
    default_grant=True,
    description="Upload PDFs and scans, extract their text and fields, search and categorise them.",
)

RPCS: RpcTable[DocsDeps] = {
    api.UPLOAD_PREPARE: uploads.upload_policy,
    api.DOCUMENT_CREATE: uploads.create_document,
    api.DOCUMENT_LIST: documents.list_documents,
    api.DOCUMENT_COUNTS: documents.count_documents,
    api.DOCUMENT_GET: documents.get_document,
    api.DOCUMENT_UPDATE: documents.update_document,
    api.DOCUMENT_DELETE: files.delete_document,
    api.DOCUMENT_DOWNLOAD: files.download_document,
    api.DOCUMENT_PREVIEW: files.preview_page,
    api.DOCUMENT_TEXT_LAYER: files.download_text_layer,
    api.DOCUMENT_REPROCESS: runs.reprocess_document,
    api.DOCUMENT_BULK: bulk.bulk,
    api.CATEGORY_LIST: categories.list_categories,
    api.CATEGORY_CREATE: categories.create_category,
    api.CATEGORY_UPDATE: categories.update_category,
    api.CATEGORY_DELETE: categories.delete_category,
    api.TASK_LIST: tasks.list_tasks,
    api.TASK_STATS: tasks.task_stats,
    api.TASK_RETRY: tasks.retry_task,
    api.EVENTS_GRANT: documents.events_grant,
    api.EVENTS_CHECK: documents.events_check,
    api.DOCUMENT_REPLAY: runs.replay_documents,
    sharing.SHARE_LIST: shares.list_shares,
    sharing.SHARE_GRANT: shares.grant_share,
    sharing.SHARE_REVOKE: shares.revoke_share,
    sharing.LINK_CREATE: links.create_link,
    sharing.LINK_LIST: links.list_links,
    sharing.LINK_REVOKE: links.revoke_link,
    sharing.LINK_OPEN: links.open_link,
    sharing.LINK_FILE: links.link_file,
    sharing.LINK_PREVIEW: links.link_preview,
    api.SYSTEM_STATUS: system.system_status,
    api.DOCUMENT_EXPORT: export.export_documents,
    api.DOCUMENT_PAGES: export.document_pages,
}
EVENTS: EventTable[DocsDeps] = {
    DOCUMENT_PROCESSING: Consumer(pipeline.on_processing, "docs-processing", max_deliver=10),
    # Progress of a run's OCR: a lost one only leaves an older page count shown until the next.
    DOCUMENT_OCR_PROGRESS: Consumer(pipeline.on_ocr_progress, "docs-ocr", max_deliver=3),
    DOCUMENT_EXTRACTED: Consumer(pipeline.on_extracted, "docs-extracted", max_deliver=10),
    DOCUMENT_ANALYZED: Consumer(pipeline.on_analyzed, "docs-analyzed", max_deliver=10),
    DOCUMENT_FAILED: Consumer(pipeline.on_failed, "docs-failed", max_deliver=10),
    # The accounts and groups sharing names (services/docs/handlers/directory.py).
    USER_REGISTERED: Consumer(directory.on_user_registered, "docs-user-registered", max_deliver=10),
    USER_CHANGED: Consumer(directory.on_user_changed, "docs-user-changed", max_deliver=10),
    PERMISSIONS_CHANGED: Consumer(
        directory.on_permissions_changed, "docs-permissions-changed", max_deliver=10
    ),
    STACK_RESTORED: Consumer(housekeeping.resume_after_restore, "docs-restored", max_deliver=10),
    # A deleted user's documents, files, categories and tasks go with them (retried while the store is away).
    USER_DELETED: Consumer(housekeeping.forget_user, "docs-user-deleted", max_deliver=10, ack_wait_s=60),
    SETTINGS_CHANGED: Consumer(housekeeping.record_settings_change, "docs-settings-audit", max_deliver=10),
}
# An upload is cut off when no chunk of it arrived for this long (ATRIUM_UPLOAD_ABANDONED_AFTER_S); the
# sweep for such uploads runs every ATRIUM_UPLOAD_SWEEP_EVERY_S.
UPLOAD_ABANDONED_AFTER_S = float(os.environ.get("ATRIUM_UPLOAD_ABANDONED_AFTER_S") or 3600)
UPLOAD_SWEEP_EVERY_S = float(os.environ.get("ATRIUM_UPLOAD_SWEEP_EVERY_S") or 600)

LOOPS: list[Loop[DocsDeps]] = [
    Loop("docs-retention", housekeeping.apply_retention, every_s=3600.0, run_at_start=True),
    Loop(
        "docs-cut-off-uploads",
        functools.partial(housekeeping.sweep_cut_off_uploads, older_than_s=UPLOAD_ABANDONED_AFTER_S),
        every_s=UPLOAD_SWEEP_EVERY_S,
        run_at_start=True,
    ),
    Loop("docs-metrics", docs_metrics.record, every_s=docs_metrics.EVERY_S, run_at_start=True),
    # Rate-limit windows whose events have all left them (share links, share-by-email lookups).
    Loop("docs-rate-limits", lambda deps: prune_rate_limits(deps.db, tables.rate_limits), every_s=600.0),
]


async def make_deps(svc: Service) -> DocsDeps:
    db = svc.database()
    store = SettingsStore(svc.js, svc.settings.platform_secret)
    await store.start()
    svc.on_shutdown.append(store.stop)
    guard = AppAccessGuard(svc, api.APP_KEY, app_name="Documents")

    async def publish_progress(owner: UUID, progress: DocumentProgress) -> None:
        await svc.nc.publish(
            DOCUMENT_PROGRESS.subject(str(owner), str(progress.document_id)),
            progress.model_dump_json().encode(),
        )

    async def render_previews(cmd: RenderPreviews, token: str | None) -> PreviewsRendered:
        # A first batch fetches the original and may start the worker's preview child: allow for both.
        return await call(svc.nc, PREVIEW_RENDER, cmd, token=token, timeout=60)  # type: ignore[no-any-return]

    # Each user's groups, forgotten the moment the permissions service says they changed (a member removed
    # loses what was shared with the group on their next request).
    memberships: PermissionsFollowingCache[tuple[UUID, ...]] = PermissionsFollowingCache(svc)

    async def groups_of(actor: Actor) -> tuple[UUID, ...]:
        async def ask() -> tuple[UUID, ...]:
            mine = await call(svc.nc, MY_GROUPS, Empty(), token=actor.token, timeout=5)
            return tuple(g.id for g in mine.groups)

        return await memberships.get(actor.user_id, ask)

    async def group_names(actor: Actor) -> dict[UUID, str]:
        every = await call(svc.nc, GROUP_DIRECTORY, Empty(), token=actor.token, timeout=5)
        return {g.id: g.name for g in every.groups}

    async def queues() -> list[api.QueueDepth]:
        infos = await svc.js.consumers_info(DOCUMENTS_STREAM.name)
        return [
            api.QueueDepth(
                consumer=i.name,
                pending=i.num_pending or 0,
                in_work=i.num_ack_pending or 0,
                redelivered=i.num_redelivered or 0,
            )
            for i in sorted(infos, key=lambda i: i.name)
        ]

    return DocsDeps(
        db=db,
        blobs=NatsBlobs(await ensure_object_store(svc.js, OBJECT_BUCKET, manage=True)),
        settings=lambda: store.current,
        check_access=guard.check,
        outbox=svc.outbox(tables.outbox, db),
        publish_progress=publish_progress,
        render_previews=render_previews,
        groups_of=groups_of,
        group_names=group_names,
        platform_secret=svc.settings.platform_secret,
        mark_superseded=await superseded_marker(svc.js),
        reprocess_per_hour=int(os.environ.get("ATRIUM_REPROCESS_PER_HOUR", "100")),
        queues=queues,
    )


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    announce_app(svc, MANIFEST)
    svc.bind(make_deps, rpcs=RPCS, events=EVENTS, loops=LOOPS)
    return svc
