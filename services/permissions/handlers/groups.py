"""Groups: members and the apps granted to a whole group."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Empty, NotFound
from contracts.identity import SsoGroupsClaimed
from contracts.permissions import (
    GroupCreate,
    GroupGrantChange,
    GroupList,
    GroupMemberChange,
    GroupName,
    GroupNames,
    GroupPublic,
    GroupRef,
    GroupUpdate,
)
from services.kit.context import Ctx

from ..tables import group_grants, group_members, groups
from .common import PermDeps, now, record_change, require_app


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


async def my_groups(_: Empty, ctx: Ctx, deps: PermDeps) -> GroupNames:
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


async def group_directory(_: Empty, ctx: Ctx, deps: PermDeps) -> GroupNames:
    """Every group's id and name, for any user: whom a document can be shared with."""
    async with deps.db.session() as s:
        rows = (await s.execute(select(groups.c.id, groups.c.name).order_by(groups.c.name))).all()
    return GroupNames(groups=[GroupName(id=r.id, name=r.name) for r in rows])


async def list_groups(_: Empty, ctx: Ctx, deps: PermDeps) -> GroupList:
    async with deps.db.session() as s:
        ids = (await s.execute(select(groups.c.id).order_by(groups.c.name))).scalars().all()
        return GroupList(groups=[await _group_public(s, gid) for gid in ids])


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A group named '{name}' already exists; choose another name.", {"field": "name"})


async def create_group(cmd: GroupCreate, ctx: Ctx, deps: PermDeps) -> GroupPublic:
    actor = ctx.require_actor()
    gid = uuid.uuid4()
    name = " ".join(cmd.name.split())
    try:
        async with deps.db.transaction() as s:
            await s.execute(insert(groups).values(id=gid, name=name, description=cmd.description))
            await record_change(
                s,
                ctx,
                deps,
                "group.created",
                actor_id=actor.user_id,
                group_id=gid,
                change="group_created",
                details={"name": name},
            )
            group = await _group_public(s, gid)
    except IntegrityError:
        raise _name_taken(name) from None
    await deps.outbox.flush()
    return group


async def update_group(cmd: GroupUpdate, ctx: Ctx, deps: PermDeps) -> GroupPublic:
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
            await record_change(
                s,
                ctx,
                deps,
                "group.updated",
                actor_id=actor.user_id,
                group_id=cmd.group_id,
                change="group_updated",
                details={k: v for k, v in values.items() if k != "updated_at"},
            )
            group = await _group_public(s, cmd.group_id)
    except IntegrityError:
        raise _name_taken(values.get("name", "")) from None
    await deps.outbox.flush()
    return group


async def delete_group(cmd: GroupRef, ctx: Ctx, deps: PermDeps) -> Empty:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        members = await _members(s, cmd.group_id)
        gone = (
            await s.execute(delete(groups).where(groups.c.id == cmd.group_id).returning(groups.c.name))
        ).first()
        if gone is None:
            raise NotFound("There is no such group; it may have been deleted.")
        await record_change(
            s,
            ctx,
            deps,
            "group.deleted",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            change="group_deleted",
            user_ids=members,
            details={"name": gone.name},
        )
    await deps.outbox.flush()
    return Empty()


async def add_member(cmd: GroupMemberChange, ctx: Ctx, deps: PermDeps) -> GroupPublic:
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
        await record_change(
            s,
            ctx,
            deps,
            "group.member_added",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            user_id=cmd.user_id,
            change="member_added",
            user_ids=[cmd.user_id],
        )
        group = await _group_public(s, cmd.group_id)
    await deps.outbox.flush()
    return group


async def remove_member(cmd: GroupMemberChange, ctx: Ctx, deps: PermDeps) -> GroupPublic:
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
        await record_change(
            s,
            ctx,
            deps,
            "group.member_removed",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            user_id=cmd.user_id,
            change="member_removed",
            user_ids=[cmd.user_id],
        )
    await deps.outbox.flush()
    return group


async def grant_group(cmd: GroupGrantChange, ctx: Ctx, deps: PermDeps) -> GroupPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        await _group_public(s, cmd.group_id)
        await require_app(s, cmd.app_key)
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
        await record_change(
            s,
            ctx,
            deps,
            "group.granted",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            app_key=cmd.app_key,
            change="group_granted",
            user_ids=list(group.member_ids),
        )
    await deps.outbox.flush()
    return group


async def revoke_group(cmd: GroupGrantChange, ctx: Ctx, deps: PermDeps) -> GroupPublic:
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
        await record_change(
            s,
            ctx,
            deps,
            "group.revoked",
            actor_id=actor.user_id,
            group_id=cmd.group_id,
            app_key=cmd.app_key,
            change="group_revoked",
            user_ids=list(group.member_ids),
        )
    await deps.outbox.flush()
    return group


async def apply_sso_groups(event: SsoGroupsClaimed, ctx: Ctx, deps: PermDeps) -> None:
    """A single sign-on reported the user's groups: of the groups its provider maps (`managed`), the user is
    a member of exactly those in `member_of` (groups deleted since are skipped). Idempotent."""
    async with deps.db.transaction() as s:
        existing = set((await s.execute(select(groups.c.id).where(groups.c.id.in_(event.managed)))).scalars())
        wanted = set(event.member_of) & existing
        current = set(
            (
                await s.execute(
                    select(group_members.c.group_id).where(
                        group_members.c.user_id == event.user_id, group_members.c.group_id.in_(existing)
                    )
                )
            ).scalars()
        )
        for group_id in sorted(wanted - current):
            await s.execute(
                pg_insert(group_members)
                .values(group_id=group_id, user_id=event.user_id)
                .on_conflict_do_nothing()
            )
            await record_change(
                s,
                ctx,
                deps,
                "group.member_added",
                group_id=group_id,
                user_id=event.user_id,
                change="member_added",
                user_ids=[event.user_id],
                details={"via": f"sso:{event.provider}"},
            )
        for group_id in sorted((current & existing) - wanted):
            await s.execute(
                delete(group_members).where(
                    group_members.c.group_id == group_id, group_members.c.user_id == event.user_id
                )
            )
            await record_change(
                s,
                ctx,
                deps,
                "group.member_removed",
                group_id=group_id,
                user_id=event.user_id,
                change="member_removed",
                user_ids=[event.user_id],
                details={"via": f"sso:{event.provider}"},
            )
    await deps.outbox.flush()
