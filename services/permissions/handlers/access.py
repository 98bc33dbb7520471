"""The access check every app runs for its users, and the default grants a new user gets once."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Forbidden
from contracts.auth import UserRegistered
from contracts.permissions import AccessCheck, AccessDecision
from services.kit.context import Ctx

from ..tables import apps, defaults_applied, group_grants, group_members, user_grants
from .common import PermDeps, app_known, now, record_change

DEFAULTS_REMEMBERED = 100_000


async def effective_keys(s: AsyncSession, user_id: UUID) -> set[str]:
    direct = select(user_grants.c.app_key).where(user_grants.c.user_id == user_id)
    via = (
        select(group_grants.c.app_key)
        .join(group_members, group_members.c.group_id == group_grants.c.group_id)
        .where(group_members.c.user_id == user_id)
    )
    return {r[0] for r in (await s.execute(direct.union(via))).all()}


async def access_check(cmd: AccessCheck, ctx: Ctx, deps: PermDeps) -> AccessDecision:
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
        and await app_known(deps, cmd.app_key)
    ):
        await ensure_defaults(cmd.user_id, ctx, deps)
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


async def apply_default_grants(event: UserRegistered, ctx: Ctx, deps: PermDeps) -> None:
    await ensure_defaults(event.user_id, ctx, deps)


async def ensure_defaults(user_id: UUID, ctx: Ctx, deps: PermDeps) -> None:
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
                select(apps.c.key).where(
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
        await record_change(
            s,
            ctx,
            deps,
            "grant.defaults_applied",
            user_id=user_id,
            change="granted",
            user_ids=[user_id],
            details={"app_keys": keys},
        )
    await deps.outbox.flush()


def _remember_defaults(deps: PermDeps, user_id: UUID) -> None:
    if len(deps.defaults_done) > DEFAULTS_REMEMBERED:
        deps.defaults_done.clear()
    deps.defaults_done.add(user_id)
