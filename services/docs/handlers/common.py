"""What every documents handler uses: its dependencies, the caller, progress, access, promoted fields."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import NotFound, Unavailable
from contracts.docs_api import AccessRole, QueueDepth
from contracts.documents import (
    DocumentFields,
    DocumentProgress,
    DocumentsSettingsStored,
    DocumentStatus,
    PreviewsRendered,
    RenderPreviews,
    Stage,
)
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.outbox import Outbox
from services.kit.security import Actor

from ..access import NEED_RANK, Caller, read_document_row, require
from ..rows import AccessibleRow, CategoryRow
from ..tables import categories, documents

log = logging.getLogger("atrium.docs")


class Blobs:
    """The Object Store as the handlers need it (implemented over NATS in app.py)."""

    async def info(self, name: str) -> tuple[int, str]:  # (size, sha256 hex); NotFound if absent
        raise NotImplementedError

    async def read(self, name: str) -> bytes:
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        raise NotImplementedError

    async def names(self) -> set[str]:  # every object's name (one pass over the store's index)
        raise NotImplementedError

    async def space_left(self) -> int | None:  # bytes the store may still take; None: no limit
        return None

    async def sweep_cut_off(self, older_than_s: float) -> int:  # uploads cut off mid-way: purged, counted
        return 0

    async def uploads_stored_after(self, mark: int) -> tuple[list[StoredUpload], int, bool]:
        """Uploaded files (named by a UUID, as the gateway names them) written or deleted since `mark` (a
        position in the store's log of changes), the new mark, and whether the log was read from its start
        because `mark` is not a position of this store."""
        return [], mark, False


@dataclass(frozen=True)
class StoredUpload:
    name: str
    stored_at: datetime | None  # None: deleted, or a time that cannot be read
    deleted: bool = False


@dataclass
class UploadSweep:
    """What one process's orphan-upload sweep keeps between runs (housekeeping.sweep_orphan_uploads): how far
    it read the store's changes, and the uploads seen there that it has not checked yet, by when stored."""

    mark: int = 0
    waiting: dict[str, datetime] = field(default_factory=dict)


AccessCheck = Callable[[Actor], Awaitable[None]]
ProgressSink = Callable[[UUID, DocumentProgress], Awaitable[None]]
GroupsOf = Callable[[Actor], Awaitable[tuple[UUID, ...]]]  # the user's groups now (permissions, cached)
GroupNames = Callable[[Actor], Awaitable[dict[UUID, str]]]  # every group's name (permissions)


async def _no_groups(_: Actor) -> tuple[UUID, ...]:
    return ()


async def _no_group_names(_: Actor) -> dict[UUID, str]:
    return {}


@dataclass
class DocsDeps:
    db: Database
    blobs: Blobs
    settings: Callable[[], DocumentsSettingsStored]
    check_access: AccessCheck
    outbox: Outbox  # the kit's: `queue_run` announces runs through it
    publish_progress: ProgressSink
    # False records documents and runs without announcing them to the workers (bulk imports, the list
    # benchmark's generator, tests that play the workers' part themselves).
    queue_work: bool = True
    # Asks the text worker to render a missing page preview, with the owner's token.
    render_previews: Callable[[RenderPreviews, str | None], Awaitable[PreviewsRendered]] = field(
        default=lambda cmd, token: _no_preview_renderer()
    )
    groups_of: GroupsOf = _no_groups
    group_names: GroupNames = _no_group_names
    # Signs share-link tickets and the preview requests made for a link's visitor (no token to forward).
    platform_secret: str = ""
    # Tells the workers a run is no longer current (`superseded_runs`), so they skip it: best effort.
    mark_superseded: Callable[[UUID, str], Awaitable[None]] = field(default=lambda run, why: _nothing())
    # Re-runs one user may start per hour (ATRIUM_REPROCESS_PER_HOUR): each may reach a paid model.
    reprocess_per_hour: int = 100
    # The durable consumers of the documents stream and their lag (the System page).
    queues: Callable[[], Awaitable[list[QueueDepth]]] = field(default=lambda: _no_queues())
    upload_sweep: UploadSweep = field(default_factory=lambda: UploadSweep())


async def _nothing() -> None:
    return None


async def _no_queues() -> list[QueueDepth]:
    return []


async def _no_preview_renderer() -> PreviewsRendered:
    raise Unavailable("Page previews need the text worker, and this documents service has none to ask.")


async def user(ctx: Ctx, deps: DocsDeps) -> Caller:
    """The verified caller, if the Documents app is granted to them, with the groups they belong to now."""
    actor = ctx.require_actor()
    await deps.check_access(actor)
    return Caller(actor, await deps.groups_of(actor))


def now() -> datetime:
    return datetime.now(UTC)


async def progress(
    deps: DocsDeps,
    owner: UUID,
    doc_id: UUID,
    run_id: UUID,
    status: DocumentStatus,
    message: str = "",
    *,
    page: int | None = None,
    pages: int | None = None,
) -> None:
    stage: Stage = "analyze" if status in ("analyzing", "ready") else "extract"
    try:
        await deps.publish_progress(
            owner,
            DocumentProgress(
                document_id=doc_id,
                run_id=run_id,
                stage=stage,
                status=status,
                page=page,
                pages=pages,
                message=message,
            ),
        )
    except Exception as exc:  # progress is fire-and-forget; the API always has the current state
        log.warning("progress publish failed: %r", exc)


def ocr_progress_message(done: int, total: int) -> str:
    return (
        f"OCR page {done} of {total}" if done else f"OCR of {total} page{'s' if total != 1 else ''} started"
    )


async def document_for(
    s: AsyncSession,
    doc_id: UUID,
    caller: Caller,
    need: AccessRole,
    *,
    what: str = "do this",
    lock: bool = False,
) -> AccessibleRow:
    """The document, if the caller's access is at least `need` (else `NotFound` or `Forbidden`); with
    `lock`, locked for the change (row-level security lets only its owner and editors lock it)."""
    row = await read_document_row(s, doc_id, caller)
    require(row, need, doc_id, what=what)
    if lock and NEED_RANK[row.access_role] >= NEED_RANK["editor"]:  # type: ignore[union-attr]
        row = await read_document_row(s, doc_id, caller, lock=True)
        require(row, need, doc_id, what=what)  # gone meanwhile
    return row  # type: ignore[return-value]


async def owned_category(s: AsyncSession, cat_id: UUID, owner: UUID) -> CategoryRow:
    row = (
        await s.execute(select(categories).where(categories.c.id == cat_id, categories.c.owner_id == owner))
    ).first()
    if row is None:
        raise NotFound("There is no such category.", {"id": str(cat_id)})
    return row


# The fields that are also columns of `documents`, for filtering and sorting.
PROMOTED = tuple(name for name in DocumentFields.model_fields if name in documents.c)


def promoted(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The column values of the promoted fields, from a document's stored (JSON) fields: typed by the contract."""
    typed = DocumentFields.model_validate({name: (fields.get(name) or {}).get("value") for name in PROMOTED})
    return {name: getattr(typed, name) for name in PROMOTED}
