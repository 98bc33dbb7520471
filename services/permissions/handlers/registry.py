"""The app registry: what apps announced themselves, which are alive, and an admin's default-grant choice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Empty
from contracts.permissions import (
    UNAVAILABLE_AFTER_S,
    AdminAppList,
    AppAdmin,
    AppList,
    AppManifest,
    AppPublic,
    AppSettingsUpdate,
)
from services.kit.context import Ctx

from ..rows import AppRow
from ..tables import apps
from .access import effective_keys, ensure_defaults
from .common import PermDeps, no_app, now, record_change


def _available(row: AppRow, at: datetime) -> bool:
    return bool(row.last_seen_at >= at - timedelta(seconds=UNAVAILABLE_AFTER_S))


def _default_grant(row: AppRow) -> bool:
    return bool(
        row.manifest_default_grant if row.default_grant_override is None else row.default_grant_override
    )


def _app_public(row: AppRow, at: datetime) -> AppPublic:
    return AppPublic(
        key=row.key,
        name=row.name,
        description=row.description,
        icon=row.icon,
        route=row.route,
        available=_available(row, at),
    )


def _app_admin(row: AppRow, at: datetime) -> AppAdmin:
    return AppAdmin(
        key=row.key,
        name=row.name,
        description=row.description,
        icon=row.icon,
        route=row.route,
        available=_available(row, at),
        version=row.version,
        default_grant=_default_grant(row),
        manifest_default_grant=row.manifest_default_grant,
        default_grant_override=row.default_grant_override,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
    )


async def record_announcement(manifest: AppManifest, ctx: Ctx, deps: PermDeps) -> None:
    # A replayed old announcement must not make a stopped app look alive: trust its own time, never the future.
    seen = min(manifest.announced_at or now(), now())
    values = dict(
        name=manifest.name,
        description=manifest.description,
        icon=manifest.icon,
        route=manifest.route,
        version=manifest.version,
        manifest_default_grant=manifest.default_grant,
    )
    stmt = pg_insert(apps).values(key=manifest.key, first_seen_at=seen, last_seen_at=seen, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[apps.c.key],
        set_={**values, "last_seen_at": func.greatest(apps.c.last_seen_at, stmt.excluded.last_seen_at)},
    )
    async with deps.db.transaction() as s:
        await s.execute(stmt)


async def my_apps(_: Empty, ctx: Ctx, deps: PermDeps) -> AppList:
    actor = ctx.require_actor()
    if actor.kind == "user":
        await ensure_defaults(actor.user_id, ctx, deps)
    at = now()
    async with deps.db.session() as s:
        rows = (await s.execute(select(apps).order_by(apps.c.name))).all()
        keys = None if actor.is_admin else await effective_keys(s, actor.user_id)
    return AppList(
        apps=[_app_public(r, at) for r in rows if _available(r, at) and (keys is None or r.key in keys)]
    )


async def admin_apps(_: Empty, ctx: Ctx, deps: PermDeps) -> AdminAppList:
    at = now()
    async with deps.db.session() as s:
        rows = (await s.execute(select(apps).order_by(apps.c.name))).all()
    return AdminAppList(apps=[_app_admin(r, at) for r in rows])


async def configure_app(cmd: AppSettingsUpdate, ctx: Ctx, deps: PermDeps) -> AppAdmin:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        row = (
            await s.execute(
                update(apps)
                .where(apps.c.key == cmd.app_key)
                .values(default_grant_override=cmd.default_grant)
                .returning(apps)
            )
        ).one_or_none()
        if row is None:
            raise no_app(cmd.app_key)
        await record_change(
            s,
            ctx,
            deps,
            "app.configured",
            actor_id=actor.user_id,
            app_key=cmd.app_key,
            change="app_configured",
            details={"default_grant": cmd.default_grant},
        )
    await deps.outbox.flush()
    return _app_admin(row, now())
