"""Permissions use cases: the app registry, grants, groups and the access check (no transport here).

Every change writes an audit row in the same transaction and, once committed, publishes
`events.permissions.changed` naming the users whose access may have changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Forbidden, NotFound
from contracts.auth import UserRegistered
from contracts.permissions import (
    UNAVAILABLE_AFTER_S,
    AccessCheck,
    AccessDecision,
    AdminAppList,
    AppAdmin,
    AppList,
    AppManifest,
    AppPublic,
    AppSettingsUpdate,
    GrantPublic,
    GroupCreate,
    GroupGrantChange,
    GroupGrantRef,
    GroupList,
    GroupMemberChange,
    GroupName,
    GroupNames,
    GroupPublic,
    GroupRef,
    GroupUpdate,
    PermissionChange,
    PermissionsChanged,
    UserGrantChange,
    UserGrants,
    UserRef,
)
from services.kit.bus import Ctx
from services.kit.db import Database

from .tables import apps, audit_log, defaults_applied, group_grants, group_members, groups, user_grants

PublishChanged = Callable[[PermissionsChanged], Awaitable[None]]


@dataclass
class PermDeps:
    db: Database
    publish_changed: PublishChanged
    # Users known to have had their defaults applied (the row never goes away): spares a query per check.
    defaults_done: set[UUID] = field(default_factory=set)


def now() -> datetime:
    return datetime.now(UTC)


# ---- registry -------------------------------------------------------------------------------------


def _available(row: Any, at: datetime) -> bool:
    return bool(row.last_seen_at >= at - timedelta(seconds=UNAVAILABLE_AFTER_S))


def _default_grant(row: Any) -> bool:
    return bool(
        row.manifest_default_grant if row.default_grant_override is None else row.default_grant_override
    )


def _app_public(row: Any, at: datetime) -> AppPublic:
    return AppPublic(
        key=row.key,
        name=row.name,
        description=row.description,
        icon=row.icon,
        route=row.route,
        available=_available(row, at),
    )


def _app_admin(row: Any, at: datetime) -> AppAdmin:
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


async def record_announcement(manifest: AppManifest, deps: PermDeps) -> None:
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


async def my_apps(deps: PermDeps, ctx: Ctx) -> AppList:
    actor = ctx.require_actor()
    if actor.kind == "user":
        await ensure_defaults(actor.user_id, deps, ctx)
    at = now()
    async with deps.db.session() as s:
        rows = (await s.execute(select(apps).order_by(apps.c.name))).all()
        keys = None if actor.is_admin else await _effective_keys(s, actor.user_id)
    return AppList(
        apps=[_app_public(r, at) for r in rows if _available(r, at) and (keys is None or r.key in keys)]
    )


async def admin_apps(deps: PermDeps, ctx: Ctx) -> AdminAppList:
    at = now()
    async with deps.db.session() as s:
        rows = (await s.execute(select(apps).order_by(apps.c.name))).all()
    return AdminAppList(apps=[_app_admin(r, at) for r in rows])


async def configure_app(cmd: AppSettingsUpdate, deps: PermDeps, ctx: Ctx) -> AppAdmin:
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
            raise _no_app(cmd.app_key)
        change = await _audit(
            s,
            ctx,
            "app.configured",
            actor_id=actor.user_id,
            app_key=cmd.app_key,
            change="app_configured",
            details={"default_grant": cmd.default_grant},
        )
    await deps.publish_changed(change)
    return _app_admin(row, now())


def _no_app(key: str) -> NotFound:
    return NotFound(
        f"No app '{key}' has ever announced itself; check the key in the admin app list.",
        {"field": "app_key"},
    )


async def _app_known(deps: PermDeps, key: str) -> bool:
    async with deps.db.session() as s:
        return (await s.execute(select(apps.c.key).where(apps.c.key == key))).first() is not None


async def _require_app(s: AsyncSession, key: str) -> None:
    if (await s.execute(select(apps.c.key).where(apps.c.key == key))).first() is None:
        raise _no_app(key)


# ---- access ---------------------------------------------------------------------------------------


async def _effective_keys(s: AsyncSession, user_id: UUID) -> set[str]:
    direct = select(user_grants.c.app_key).where(user_grants.c.user_id == user_id)
    via = (
        select(group_grants.c.app_key)
        .join(group_members, group_members.c.group_id == group_grants.c.group_id)
        .where(group_members.c.user_id == user_id)
    )
    return {r[0] for r in (await s.execute(direct.union(via))).all()}


async def access_check(cmd: AccessCheck, deps: PermDeps, ctx: Ctx) -> AccessDecision:
    actor = ctx.require_actor()
    if actor.user_id != cmd.user_id and not actor.is_admin and actor.kind != "service":
        raise Forbidden("You may only ask about your own access.")
    if actor.user_id == cmd.user_id and actor.is_admin:
        return AccessDecision(allowed=True, reason="admin")
    # A valid token proves the user exists, even before their registration event is handled. But if
    # this app's announcement is not recorded yet either, applying defaults now would miss it for good.
    if (
        actor.user_id == cmd.user_id
        and cmd.user_id not in deps.defaults_done
        and await _app_known(deps, cmd.app_key)
    ):
        await ensure_defaults(cmd.user_id, deps, ctx)
    async with deps.db.session() as s:
        direct = (
            await s.execute(
                select(user_grants.c.app_key).where(
                    user_grants.c.user_id == cmd.user_id, user_grants.c.app_key == cmd.app_key
                )
            )
        ).first()
        if direct is not None:
            return AccessDecision(allowed=True, reason="direct_grant")
        via = (
            await s.execute(
                select(group_grants.c.app_key)
                .join(group_members, group_members.c.group_id == group_grants.c.group_id)
                .where(group_members.c.user_id == cmd.user_id, group_grants.c.app_key == cmd.app_key)
                .limit(1)
            )
        ).first()
    if via is not None:
        return AccessDecision(allowed=True, reason="group_grant")
    return AccessDecision(allowed=False, reason="no_grant")


# ---- grants ---------------------------------------------------------------------------------------


def _grant_public(row: Any) -> GrantPublic:
    return GrantPublic(
        user_id=row.user_id, app_key=row.app_key, granted_by=row.granted_by, granted_at=row.granted_at
    )


async def user_grants_of(cmd: UserRef, deps: PermDeps, ctx: Ctx) -> UserGrants:
    async with deps.db.session() as s:
        direct = (
            await s.execute(
                select(user_grants)
                .where(user_grants.c.user_id == cmd.user_id)
                .order_by(user_grants.c.app_key)
            )
        ).all()
        via = (
            await s.execute(
                select(groups.c.id, groups.c.name, group_grants.c.app_key)
                .join(group_grants, group_grants.c.group_id == groups.c.id)
                .join(group_members, group_members.c.group_id == groups.c.id)
                .where(group_members.c.user_id == cmd.user_id)
                .order_by(groups.c.name, group_grants.c.app_key)
            )
        ).all()
    effective = sorted({r.app_key for r in direct} | {r.app_key for r in via})
    return UserGrants(
        user_id=cmd.user_id,
        direct=[_grant_public(r) for r in direct],
        via_groups=[GroupGrantRef(group_id=r.id, group_name=r.name, app_key=r.app_key) for r in via],
        effective=effective,
    )


async def grant(cmd: UserGrantChange, deps: PermDeps, ctx: Ctx) -> GrantPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await _require_app(s, cmd.app_key)
        row = (
            await s.execute(
                pg_insert(user_grants)
                .values(user_id=cmd.user_id, app_key=cmd.app_key, granted_by=actor.user_id, granted_at=now())
                .on_conflict_do_nothing()
                .returning(user_grants)
            )
        ).one_or_none()
        if row is None:  # already granted: nothing changed, nothing to announce
            existing = (
                await s.execute(
                    select(user_grants).where(
                        user_grants.c.user_id == cmd.user_id, user_grants.c.app_key == cmd.app_key
                    )
                )
            ).one()
            return _grant_public(existing)
        change = await _audit(
            s,
            ctx,
            "grant.added",
            actor_id=actor.user_id,
            user_id=cmd.user_id,
            app_key=cmd.app_key,
            change="granted",
            user_ids=[cmd.user_id],
        )
    await deps.publish_changed(change)
    return _grant_public(row)


async def revoke(cmd: UserGrantChange, deps: PermDeps, ctx: Ctx) -> None:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        gone = (
            await s.execute(
                delete(user_grants)
                .where(user_grants.c.user_id == cmd.user_id, user_grants.c.app_key == cmd.app_key)
                .returning(user_grants.c.app_key)
            )
        ).first()
        if gone is None:
            return
        change = await _audit(
            s,
            ctx,
            "grant.revoked",
            actor_id=actor.user_id,
            user_id=cmd.user_id,
            app_key=cmd.app_key,
            change="revoked",
            user_ids=[cmd.user_id],
        )
    await deps.publish_changed(change)


async def apply_default_grants(event: UserRegistered, deps: PermDeps, ctx: Ctx) -> None:
    await ensure_defaults(event.user_id, deps, ctx)


async def ensure_defaults(user_id: UUID, deps: PermDeps, ctx: Ctx) -> None:
    """Give a new user the apps that are granted by default — once, however often this runs.

    Runs when the registration event arrives, and also on the user's first access check or app
    list: a user who signs up and opens an app at once must not be refused because the event is
    still on its way. Whichever comes first applies the defaults; the other finds them applied.
    """
    if user_id in deps.defaults_done:
        return
    async with deps.db.session() as s:
        done = (
            await s.execute(select(defaults_applied.c.user_id).where(defaults_applied.c.user_id == user_id))
        ).first() is not None
    if done:
        _remember_defaults(deps, user_id)
        return
    async with deps.db.transaction() as s:
        first = (
            await s.execute(
                pg_insert(defaults_applied)
                .values(user_id=user_id)
                .on_conflict_do_nothing()
                .returning(defaults_applied.c.user_id)
            )
        ).first()
        if first is None:
            return
        rows = (
            await s.execute(
                select(apps).where(
                    or_(
                        apps.c.default_grant_override.is_(True),
                        (apps.c.default_grant_override.is_(None) & apps.c.manifest_default_grant.is_(True)),
                    )
                )
            )
        ).all()
        keys = sorted(r.key for r in rows)
        if not keys:
            return
        await s.execute(
            pg_insert(user_grants)
            .values(
                [{"user_id": user_id, "app_key": k, "granted_by": None, "granted_at": now()} for k in keys]
            )
            .on_conflict_do_nothing()
        )
        change = await _audit(
            s,
            ctx,
            "grant.defaults_applied",
            user_id=user_id,
            change="granted",
            user_ids=[user_id],
            details={"app_keys": keys},
        )
    await deps.publish_changed(change)


def _remember_defaults(deps: PermDeps, user_id: UUID) -> None:
    if len(deps.defaults_done) > 100_000:
        deps.defaults_done.clear()
    deps.defaults_done.add(user_id)


async def forget_user(user_id: UUID, deps: PermDeps, ctx: Ctx) -> None:
    """A deleted user keeps no grants or memberships."""
    async with deps.db.transaction() as s:
        grants = (
            (
                await s.execute(
                    delete(user_grants)
                    .where(user_grants.c.user_id == user_id)
                    .returning(user_grants.c.app_key)
                )
            )
            .scalars()
            .all()
        )
        groups_left = (
            (
                await s.execute(
                    delete(group_members)
                    .where(group_members.c.user_id == user_id)
                    .returning(group_members.c.group_id)
                )
            )
            .scalars()
            .all()
        )
        if not grants and not groups_left:  # nothing held, or a redelivered deletion: nothing changes
            return
        change = await _audit(
            s,
            ctx,
            "user.forgotten",
            user_id=user_id,
            change="user_deleted",
            user_ids=[user_id],
            details={"app_keys": list(grants), "group_ids": [str(g) for g in groups_left]},
        )
    await deps.publish_changed(change)


# ---- groups ---------------------------------------------------------------------------------------


async def _group_public(s: AsyncSession, group_id: UUID) -> GroupPublic:
    row = (await s.execute(select(groups).where(groups.c.id == group_id))).one_or_none()
    if row is None:
        raise NotFound("There is no such group; it may have been deleted.")
    members = (
        (
            await s.execute(
                select(group_members.c.user_id)
                .where(group_members.c.group_id == group_id)
                .order_by(group_members.c.added_at)
            )
        )
        .scalars()
        .all()
    )
    keys = (
        (
            await s.execute(
                select(group_grants.c.app_key)
                .where(group_grants.c.group_id == group_id)
                .order_by(group_grants.c.app_key)
            )
        )
        .scalars()
        .all()
    )
    return GroupPublic(
        id=row.id,
        name=row.name,
        description=row.description,
        member_ids=list(members),
        app_keys=list(keys),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _members(s: AsyncSession, group_id: UUID) -> list[UUID]:
    return list(
        (await s.execute(select(group_members.c.user_id).where(group_members.c.group_id == group_id)))
        .scalars()
        .all()
    )


async def list_groups(deps: PermDeps, ctx: Ctx) -> GroupList:
    async with deps.db.session() as s:
        ids = (await s.execute(select(groups.c.id).order_by(groups.c.name))).scalars().all()
        return GroupList(groups=[await _group_public(s, gid) for gid in ids])


async def my_groups(deps: PermDeps, ctx: Ctx) -> GroupNames:
    """The caller's groups (the documents service caches them to decide what is shared with the caller)."""
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(groups.c.id, groups.c.name)
                .join(group_members, group_members.c.group_id == groups.c.id)
                .where(group_members.c.user_id == actor.user_id)
                .order_by(groups.c.name)
            )
        ).all()
    return GroupNames(groups=[GroupName(id=r.id, name=r.name) for r in rows])


async def group_directory(deps: PermDeps, ctx: Ctx) -> GroupNames:
    """Every group's id and name, for any user: whom a document can be shared with."""
    async with deps.db.session() as s:
        rows = (await s.execute(select(groups.c.id, groups.c.name).order_by(groups.c.name))).all()
    return GroupNames(groups=[GroupName(id=r.id, name=r.name) for r in rows])


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A group named '{name}' already exists; choose another name.", {"field": "name"})


async def create_group(cmd: GroupCreate, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    gid = uuid.uuid4()
    name = " ".join(cmd.name.split())
    try:
        async with deps.db.transaction() as s:
            await s.execute(insert(groups).values(id=gid, name=name, description=cmd.description))
            change = await _audit(
                s,
                ctx,
                "group.created",
                actor_id=actor.user_id,
                group_id=gid,
                change="group_created",
                details={"name": name},
            )
            group = await _group_public(s, gid)
    except IntegrityError:
        raise _name_taken(name) from None
    await deps.publish_changed(change)
    return group


async def update_group(cmd: GroupUpdate, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    values: dict[str, Any] = {"updated_at": now()}
    if cmd.name is not None:
        values["name"] = " ".join(cmd.name.split())
    if cmd.description is not None:
        values["description"] = cmd.description
    try:
        async with deps.db.transaction() as s:
            found = (
                await s.execute(
                    update(groups).where(groups.c.id == cmd.group_id).values(**values).returning(groups.c.id)
                )
            ).first()
            if found is None:
                raise NotFound("There is no such group; it may have been deleted.")
            change = await _audit(
                s,
                ctx,
                "group.updated",
                actor_id=actor.user_id,
                group_id=cmd.group_id,
                change="group_updated",
                details={k: v for k, v in values.items() if k != "updated_at"},
            )
            group = await _group_public(s, cmd.group_id)
    except IntegrityError:
        raise _name_taken(values.get("name", "")) from None
    await deps.publish_changed(change)
    return group


async def delete_group(cmd: GroupRef, deps: PermDeps, ctx: Ctx) -> None:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        members = await _members(s, cmd.group_id)
        gone = (
            await s.execute(delete(groups).where(groups.c.id == cmd.group_id).returning(groups.c.name))
        ).first()
        if gone is None:
            raise NotFound("There is no such group; it may have been deleted.")
        change = await _audit(
            s,
            ctx,
            "group.deleted",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            change="group_deleted",
            user_ids=members,
            details={"name": gone.name},
        )
    await deps.publish_changed(change)


async def add_member(cmd: GroupMemberChange, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        group = await _group_public(s, cmd.group_id)
        added = (
            await s.execute(
                pg_insert(group_members)
                .values(group_id=cmd.group_id, user_id=cmd.user_id, added_by=actor.user_id)
                .on_conflict_do_nothing()
                .returning(group_members.c.user_id)
            )
        ).first()
        if added is None:
            return group
        change = await _audit(
            s,
            ctx,
            "group.member_added",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            user_id=cmd.user_id,
            change="member_added",
            user_ids=[cmd.user_id],
        )
        group = await _group_public(s, cmd.group_id)
    await deps.publish_changed(change)
    return group


async def remove_member(cmd: GroupMemberChange, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await _group_public(s, cmd.group_id)
        gone = (
            await s.execute(
                delete(group_members)
                .where(group_members.c.group_id == cmd.group_id, group_members.c.user_id == cmd.user_id)
                .returning(group_members.c.user_id)
            )
        ).first()
        group = await _group_public(s, cmd.group_id)
        if gone is None:
            return group
        change = await _audit(
            s,
            ctx,
            "group.member_removed",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            user_id=cmd.user_id,
            change="member_removed",
            user_ids=[cmd.user_id],
        )
    await deps.publish_changed(change)
    return group


async def grant_group(cmd: GroupGrantChange, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await _group_public(s, cmd.group_id)
        await _require_app(s, cmd.app_key)
        added = (
            await s.execute(
                pg_insert(group_grants)
                .values(
                    group_id=cmd.group_id, app_key=cmd.app_key, granted_by=actor.user_id, granted_at=now()
                )
                .on_conflict_do_nothing()
                .returning(group_grants.c.app_key)
            )
        ).first()
        group = await _group_public(s, cmd.group_id)
        if added is None:
            return group
        change = await _audit(
            s,
            ctx,
            "group.granted",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            app_key=cmd.app_key,
            change="group_granted",
            user_ids=list(group.member_ids),
        )
    await deps.publish_changed(change)
    return group


async def revoke_group(cmd: GroupGrantChange, deps: PermDeps, ctx: Ctx) -> GroupPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await _group_public(s, cmd.group_id)
        gone = (
            await s.execute(
                delete(group_grants)
                .where(group_grants.c.group_id == cmd.group_id, group_grants.c.app_key == cmd.app_key)
                .returning(group_grants.c.app_key)
            )
        ).first()
        group = await _group_public(s, cmd.group_id)
        if gone is None:
            return group
        change = await _audit(
            s,
            ctx,
            "group.revoked",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            app_key=cmd.app_key,
            change="group_revoked",
            user_ids=list(group.member_ids),
        )
    await deps.publish_changed(change)
    return group


# ---- audit ----------------------------------------------------------------------------------------


async def _audit(
    s: AsyncSession,
    ctx: Ctx,
    action: str,
    *,
    actor_id: UUID | None = None,
    user_id: UUID | None = None,
    group_id: UUID | None = None,
    app_key: str | None = None,
    change: PermissionChange,
    user_ids: list[UUID] | None = None,
    details: dict[str, Any] | None = None,
) -> PermissionsChanged:
    """Write the audit row; return the event to publish once the transaction has committed."""
    at = now()
    await s.execute(
        insert(audit_log).values(
            id=uuid.uuid4(),
            at=at,
            action=action,
            actor_id=actor_id,
            user_id=user_id,
            group_id=group_id,
            app_key=app_key,
            request_id=ctx.request_id,
            details=details or {},
        )
    )
    return PermissionsChanged(
        user_ids=user_ids or [], app_key=app_key, change=change, at=at, group_id=group_id
    )
