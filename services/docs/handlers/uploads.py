"""Uploads: the caller's limits before the gateway stores a byte, and recording what it stored (quotas,
duplicates, the first run)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, insert, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Empty, InsufficientStorage, TooLarge
from contracts.base import AtriumError
from contracts.docs_api import CreateDocument, UploadPolicy, UploadResult
from contracts.documents import DocumentsSettingsStored
from services.kit.audit import record_audit
from services.kit.bus import Ctx

from ..access import acting
from ..names import sanitize_filename
from ..tables import audit_log, documents
from .common import DocsDeps, progress, user
from .runs import queue_run
from .views import summary

MB = 1024 * 1024


async def _usage(s: AsyncSession, owner: UUID) -> tuple[int, int]:
    row = (
        await s.execute(
            select(func.count(), func.coalesce(func.sum(documents.c.size), 0)).where(
                documents.c.owner_id == owner
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def _usage_and_first_copy(s: AsyncSession, owner: UUID, sha: str) -> tuple[int, int, Any]:
    """The owner's document count and bytes, and their first upload of this content (id, filename) or
    None: one statement."""
    d = documents.c
    usage = select(func.count().label("n"), func.coalesce(func.sum(d.size), 0).label("used"))
    first = (
        select(d.id, d.filename)
        .where(d.owner_id == owner, d.sha256 == sha, d.duplicate_of.is_(None))
        .order_by(d.created_at)
        .limit(1)
        .lateral("first")
    )
    u = usage.where(d.owner_id == owner).subquery("usage")
    row = (
        await s.execute(
            select(u.c.n, u.c.used, first.c.id, first.c.filename).select_from(u.outerjoin(first, true()))
        )
    ).one()
    return int(row.n), int(row.used), None if row.id is None else row


def _quota_errors(settings: DocumentsSettingsStored, count: int, used: int, incoming: int) -> None:
    if settings.quota_documents_per_user is not None and count + 1 > settings.quota_documents_per_user:
        raise Conflict(
            f"You have reached the limit of {settings.quota_documents_per_user} documents per user "
            "(quota_documents_per_user); delete some documents or ask an administrator.",
            {"limit": "quota_documents_per_user", "value": settings.quota_documents_per_user},
        )
    if (
        settings.quota_storage_mb_per_user is not None
        and used + incoming > settings.quota_storage_mb_per_user * MB
    ):
        raise TooLarge(
            f"This upload would exceed your storage quota of {settings.quota_storage_mb_per_user} MB "
            "(quota_storage_mb_per_user); delete some documents or ask an administrator.",
            {
                "limit": "quota_storage_mb_per_user",
                "value": settings.quota_storage_mb_per_user,
                "used_bytes": used,
            },
        )


# Below this much room an upload is refused before the gateway stores a byte.
MIN_STORE_ROOM = MB


async def upload_policy(_: Empty, ctx: Ctx, deps: DocsDeps) -> UploadPolicy:
    caller = await user(ctx, deps)
    left = await deps.blobs.space_left()
    if left is not None and left < MIN_STORE_ROOM:
        raise InsufficientStorage(
            "The document store is full: its share of the storage budget (ATRIUM_STORAGE_BUDGET) is used up. "
            "Delete documents or ask an administrator for more space.",
            {"space_left_bytes": left},
        )
    st = deps.settings()
    async with acting(deps.db, caller) as s:
        count, used = await _usage(s, caller.user_id)
    _quota_errors(st, count, used, 1 if st.quota_storage_mb_per_user is not None else 0)
    return UploadPolicy(
        max_file_bytes=st.max_upload_mb * MB,
        storage_left_bytes=None
        if st.quota_storage_mb_per_user is None
        else st.quota_storage_mb_per_user * MB - used,
        documents_left=None if st.quota_documents_per_user is None else st.quota_documents_per_user - count,
    )


def upload_lock(object_name: str, *, wait: bool) -> Select[Any]:
    """The lock an uploaded file's recording holds (create_document) and its sweep as an orphan takes
    (housekeeping.sweep_orphan_uploads): one of them goes first; the sweep does not wait."""
    lock = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
    return select(lock(func.hashtext(f"upload:{object_name}")))


async def create_document(cmd: CreateDocument, ctx: Ctx, deps: DocsDeps) -> UploadResult:
    caller = await user(ctx, deps)
    actor = caller.actor
    object_name = str(cmd.object_name)
    filename = sanitize_filename(cmd.filename)
    st = deps.settings()
    keep_blob = False  # a repeated create of a recorded upload must not delete the recorded file
    try:
        async with acting(deps.db, caller, write=True) as s:
            # The file is looked at under its lock (swept as an orphan before, it is gone: NotFound, upload
            # it again; recorded first, the sweep sees its document) and its owner's: one upload per owner
            # at a time past this point, so quotas and duplicate checks cannot race. One statement for both.
            owner_lock = func.pg_advisory_xact_lock(func.hashtext(str(actor.user_id)))
            await s.execute(upload_lock(object_name, wait=True).add_columns(owner_lock))
            size, sha = await deps.blobs.info(object_name)
            count, used, first = await _usage_and_first_copy(s, actor.user_id, sha)
            _quota_errors(st, count, used, size)
            if first is not None and st.duplicate_policy == "reject":
                raise Conflict(
                    f"You already uploaded this file as “{first.filename}” (document {first.id}).",
                    {"existing_document_id": str(first.id), "existing_filename": first.filename},
                )
            try:
                row = (
                    await s.execute(
                        insert(documents)
                        .values(
                            id=cmd.object_name,
                            owner_id=actor.user_id,
                            filename=filename,
                            object_name=object_name,
                            size=size,
                            sha256=sha,
                            media_type=cmd.media_type,
                            status="queued",
                            run_id=uuid.uuid4(),
                            duplicate_of=first.id if first is not None else None,
                        )
                        .returning(documents)
                    )
                ).one()
            except IntegrityError:
                keep_blob = True
                raise Conflict("This upload was already recorded.") from None
            await queue_run(s, row, "extract", deps)
            await record_audit(
                s,
                audit_log,
                ctx,
                "document.uploaded",
                actor_id=actor.user_id,
                target_id=row.id,
                filename=filename,
                size=size,
            )
    except AtriumError:
        if not keep_blob:
            await deps.blobs.delete(object_name)
        raise
    await progress(deps, row.owner_id, row.id, row.run_id, "queued")
    return UploadResult(document=summary(row, []), duplicate=first is not None)
