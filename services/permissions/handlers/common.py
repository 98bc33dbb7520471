"""What every permissions handler shares: its dependencies, and how a change is recorded and announced."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import NotFound
from contracts.permissions import PERMISSIONS_CHANGED, PermissionChange, PermissionsChanged
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.outbox import Outbox

from ..tables import apps, audit_log


@dataclass
class PermDeps:
    db: Database
    outbox: Outbox
    # Users known to have had their defaults applied (the row never goes away): spares a query per check.
    defaults_done: set[UUID] = field(default_factory=set)


def now() -> datetime:
    return datetime.now(UTC)


async def record_change(
    s: AsyncSession,
    ctx: Ctx,
    deps: PermDeps,
    action: str,
    *,
    change: PermissionChange,
    actor_id: UUID | None = None,
    user_id: UUID | None = None,
    group_id: UUID | None = None,
    app_key: str | None = None,
    user_ids: list[UUID] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit row and `events.permissions.changed`, both in the caller's transaction (call
    `deps.outbox.flush()` once it has committed). The audit target is the group of a group action,
    else the user; the app and a group action's user go into its details."""
    at = now()
    extra = dict(details or {})
    if app_key is not None:
        extra["app_key"] = app_key
    if group_id is not None and user_id is not None:
        extra["user_id"] = user_id
    entry = await record_audit(
        s, audit_log, ctx, action, actor_id=actor_id, target_id=group_id or user_id, at=at, **extra
    )
    await deps.outbox.enqueue(
        s,
        PERMISSIONS_CHANGED,
        PermissionsChanged(user_ids=user_ids or [], app_key=app_key, change=change, at=at, group_id=group_id),
        msg_id=f"permissions_changed:{entry}",
    )


def no_app(key: str) -> NotFound:
    return NotFound(
        f"No app '{key}' has ever announced itself; check the key in the admin app list.",
        {"field": "app_key"},
    )


async def app_known(deps: PermDeps, key: str) -> bool:
    async with deps.db.session() as s:
        return (await s.execute(select(apps.c.key).where(apps.c.key == key))).first() is not None


async def require_app(s: AsyncSession, key: str) -> None:
    if (await s.execute(select(apps.c.key).where(apps.c.key == key))).first() is None:
        raise no_app(key)
