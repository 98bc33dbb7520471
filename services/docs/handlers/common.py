"""What every documents handler uses: its dependencies, the caller, progress, ownership, promoted fields."""

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
from contracts.docs_api import QueueDepth
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

from ..rows import CategoryRow, DocumentRow
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


AccessCheck = Callable[[Actor], Awaitable[None]]
ProgressSink = Callable[[UUID, DocumentProgress], Awaitable[None]]


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
    render_previews: Callable[[RenderPreviews, str], Awaitable[PreviewsRendered]] = field(
        default=lambda cmd, token: _no_preview_renderer()
    )
    # Tells the workers a run is no longer current (`superseded_runs`), so they skip it: best effort.
    mark_superseded: Callable[[UUID, str], Awaitable[None]] = field(default=lambda run, why: _nothing())
    # Re-runs one user may start per hour (ATRIUM_REPROCESS_PER_HOUR): each may reach a paid model.
    reprocess_per_hour: int = 100
    # The durable consumers of the documents stream and their lag (the System page).
    queues: Callable[[], Awaitable[list[QueueDepth]]] = field(default=lambda: _no_queues())


async def _nothing() -> None:
    return None


async def _no_queues() -> list[QueueDepth]:
    return []


async def _no_preview_renderer() -> PreviewsRendered:
    raise Unavailable("Page previews need the text worker, and this documents service has none to ask.")


async def user(ctx: Ctx, deps: DocsDeps) -> Actor:
    """The verified caller, if the Documents app is granted to them."""
    actor = ctx.require_actor()
    await deps.check_access(actor)
    return actor


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


async def owned(s: AsyncSession, doc_id: UUID, owner: UUID, *, lock: bool = False) -> DocumentRow:
    stmt = select(documents).where(documents.c.id == doc_id, documents.c.owner_id == owner)
    if lock:
        stmt = stmt.with_for_update()
    row = (await s.execute(stmt)).first()
    if row is None:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    return row


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
