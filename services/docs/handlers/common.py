"""What every documents handler uses: its dependencies, the caller, the audit trail, progress, ownership."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import NotFound, Unavailable
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
from services.kit.security import Actor

from ..rows import CategoryRow, DocumentRow
from ..tables import audit_log, categories, documents

log = logging.getLogger("atrium.docs")


class Blobs:
    """The Object Store as the handlers need it (implemented over NATS in app.py)."""

    async def info(self, name: str) -> tuple[int, str]:  # (size, sha256 hex); NotFound if absent
        raise NotImplementedError

    async def read(self, name: str) -> bytes:
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        raise NotImplementedError


AccessCheck = Callable[[Actor], Awaitable[None]]
ProgressSink = Callable[[UUID, DocumentProgress], Awaitable[None]]


@dataclass
class DocsDeps:
    db: Database
    blobs: Blobs
    settings: Callable[[], DocumentsSettingsStored]
    check_access: AccessCheck
    wake_relay: Callable[[], None]
    publish_progress: ProgressSink
    # False records documents and runs without announcing them to the workers (bulk imports, the list
    # benchmark's generator, tests that play the workers' part themselves).
    queue_work: bool = True
    # Asks the text worker to render a missing page preview, with the owner's token.
    render_previews: Callable[[RenderPreviews, str], Awaitable[PreviewsRendered]] = field(
        default=lambda cmd, token: _no_preview_renderer()
    )


async def _no_preview_renderer() -> PreviewsRendered:
    raise Unavailable("Page previews need the text worker, and this documents service has none to ask.")


async def user(ctx: Ctx, deps: DocsDeps) -> Actor:
    """The verified caller, if the Documents app is granted to them."""
    actor = ctx.require_actor()
    await deps.check_access(actor)
    return actor


def now() -> datetime:
    return datetime.now(UTC)


async def audit(
    s: AsyncSession, ctx: Ctx, action: str, actor: Actor | None, target: UUID | None, **details: Any
) -> None:
    await s.execute(
        insert(audit_log).values(
            id=uuid.uuid4(),
            action=action,
            actor_id=actor.user_id if actor else None,
            target_id=target,
            ip=ctx.client_ip or None,
            request_id=ctx.request_id,
            details=details,
        )
    )


async def progress(
    deps: DocsDeps, owner: UUID, doc_id: UUID, run_id: UUID, status: DocumentStatus, message: str = ""
) -> None:
    stage: Stage = "analyze" if status in ("analyzing", "ready") else "extract"
    try:
        await deps.publish_progress(
            owner,
            DocumentProgress(document_id=doc_id, run_id=run_id, stage=stage, status=status, message=message),
        )
    except Exception as exc:  # progress is fire-and-forget; the API always has the current state
        log.warning("progress publish failed: %r", exc)


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
