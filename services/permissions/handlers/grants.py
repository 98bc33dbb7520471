"""A user's own grants: listing, granting, revoking, and forgetting a deleted user."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Empty
from contracts.auth import UserDeleted
from contracts.permissions import GrantPublic, GroupGrantRef, UserGrantChange, UserGrants, UserRef
from services.kit.context import Ctx

from ..rows import GrantRow
from ..tables import group_grants, group_members, groups, user_grants
from .common import PermDeps, now, record_change, require_app


def _grant_public(row: GrantRow) -> GrantPublic:
    return GrantPublic(
        user_id=row.user_id, app_key=row.app_key, granted_by=row.granted_by, granted_at=row.granted_at
    )


async def user_grants_of(cmd: UserRef, ctx: Ctx, deps: PermDeps) -> UserGrants:
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


async def grant(cmd: UserGrantChange, ctx: Ctx, deps: PermDeps) -> GrantPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await require_app(s, cmd.app_key)
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
        await record_change(
            s,
            ctx,
            deps,
            "grant.added",
            actor_id=actor.user_id,
            user_id=cmd.user_id,
            app_key=cmd.app_key,
            change="granted",
            user_ids=[cmd.user_id],
        )
    await deps.outbox.flush()
    return _grant_public(row)


async def revoke(cmd: UserGrantChange, ctx: Ctx, deps: PermDeps) -> Empty:
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
            return Empty()
        await record_change(
            s,
            ctx,
            deps,
            "grant.revoked",
            actor_id=actor.user_id,
            user_id=cmd.user_id,
            app_key=cmd.app_key,
            change="revoked",
            user_ids=[cmd.user_id],
        )
    await deps.outbox.flush()
    return Empty()


async def forget_user(event: UserDeleted, ctx: Ctx, deps: PermDeps) -> None:
    """A deleted user keeps no grants or memberships."""
    async with deps.db.transaction() as s:
        app_keys = (
            (
                await s.execute(
                    delete(user_grants)
                    .where(user_grants.c.user_id == event.user_id)
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
                    .where(group_members.c.user_id == event.user_id)
                    .returning(group_members.c.group_id)
                )
            )
            .scalars()
            .all()
        )
        if not app_keys and not groups_left:  # nothing held, or a redelivered deletion: nothing changes
            return
        await record_change(
            s,
            ctx,
            deps,
            "user.forgotten",
            user_id=event.user_id,
            change="user_deleted",
            user_ids=[event.user_id],
            details={"app_keys": list(app_keys), "group_ids": [str(g) for g in groups_left]},
        )
    await deps.outbox.flush()
