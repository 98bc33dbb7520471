"""Profile use cases (no transport here). A user only ever reads or changes their own profile:
every handler takes the user from the verified token, never from the request body."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, NotFound
from contracts.auth import UserDeleted, UserRegistered
from contracts.profile import AvatarImage, AvatarUpload, ProfilePublic, ProfileUpdate, UserProfileRef
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.logging import log_fields

from . import avatars
from .rows import ProfileRow
from .tables import profiles

log = logging.getLogger("atrium.profile")


class ObjectStore(Protocol):
    async def put(self, name: str, data: bytes) -> Any: ...
    async def get(self, name: str) -> Any: ...
    async def delete(self, name: str) -> Any: ...


@dataclass
class ProfileDeps:
    db: Database
    avatars: ObjectStore  # the `avatars` Object Store bucket


def _public(row: ProfileRow) -> ProfilePublic:
    return ProfilePublic(
        user_id=row.user_id,
        display_name=row.display_name,
        full_name=row.full_name,
        phone=row.phone,
        job_title=row.job_title,
        locale=row.locale,
        time_zone=row.time_zone,
        theme=row.theme,
        has_avatar=row.avatar_object is not None,
        avatar_updated_at=row.avatar_updated_at,
        updated_at=row.updated_at,
    )


async def _ensure(s: AsyncSession, user_id: UUID, **initial: str | None) -> ProfileRow:
    """The user's profile row, created if missing (safe against a concurrent creation)."""
    await s.execute(pg_insert(profiles).values(user_id=user_id, **initial).on_conflict_do_nothing())
    return (await s.execute(select(profiles).where(profiles.c.user_id == user_id))).one()


async def on_user_registered(event: UserRegistered, ctx: Ctx, deps: ProfileDeps) -> None:
    # ON CONFLICT DO NOTHING: a redelivered registration neither duplicates nor overwrites edits since.
    display = event.full_name or str(event.email).split("@", 1)[0]
    async with deps.db.transaction() as s:
        await _ensure(s, event.user_id, full_name=event.full_name, display_name=display[:80])


async def get_profile(_: Empty, ctx: Ctx, deps: ProfileDeps) -> ProfilePublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        return _public(await _ensure(s, actor.user_id))


async def get_user_profile(cmd: UserProfileRef, ctx: Ctx, deps: ProfileDeps) -> ProfilePublic:
    async with deps.db.session() as s:
        row = (await s.execute(select(profiles).where(profiles.c.user_id == cmd.user_id))).one_or_none()
    if row is None:
        raise NotFound("This user has no profile yet.")
    return _public(row)


async def update_profile(cmd: ProfileUpdate, ctx: Ctx, deps: ProfileDeps) -> ProfilePublic:
    actor = ctx.require_actor()
    # null = unchanged, "" = cleared (locale, time zone and theme are Literal/validated, never "").
    values = {name: (value or None) for name, value in cmd.model_dump().items() if value is not None}
    async with deps.db.transaction() as s:
        await _ensure(s, actor.user_id)
        if values:
            await s.execute(
                update(profiles)
                .where(profiles.c.user_id == actor.user_id)
                .values(**values, updated_at=datetime.now(UTC))
            )
        row = (await s.execute(select(profiles).where(profiles.c.user_id == actor.user_id))).one()
    return _public(row)


async def set_avatar(cmd: AvatarUpload, ctx: Ctx, deps: ProfileDeps) -> ProfilePublic:
    actor = ctx.require_actor()
    # Decoding an image is CPU work: keep it off the event loop.
    encoded, content_type = await asyncio.to_thread(avatars.process_avatar, bytes(cmd.data))
    store = deps.avatars
    name = f"{actor.user_id}/{uuid.uuid4().hex}"
    await store.put(name, encoded)
    now = datetime.now(UTC)
    async with deps.db.transaction() as s:
        old = (await _ensure(s, actor.user_id)).avatar_object
        await s.execute(
            update(profiles)
            .where(profiles.c.user_id == actor.user_id)
            .values(
                avatar_object=name, avatar_content_type=content_type, avatar_updated_at=now, updated_at=now
            )
        )
        row = (await s.execute(select(profiles).where(profiles.c.user_id == actor.user_id))).one()
    if old:
        await _delete_object(store, old)
    return _public(row)


async def get_avatar(_: Empty, ctx: Ctx, deps: ProfileDeps) -> AvatarImage:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        row = (await s.execute(select(profiles).where(profiles.c.user_id == actor.user_id))).one_or_none()
    if row is None or row.avatar_object is None:
        raise NotFound("You have no avatar; upload one with PUT /api/v1/profile/avatar.")
    result = await deps.avatars.get(row.avatar_object)
    return AvatarImage(
        content_type=row.avatar_content_type,
        data=base64.b64encode(result.data),
        updated_at=row.avatar_updated_at,
    )


async def delete_avatar(_: Empty, ctx: Ctx, deps: ProfileDeps) -> ProfilePublic:
    actor = ctx.require_actor()
    now = datetime.now(UTC)
    async with deps.db.transaction() as s:
        old = (await _ensure(s, actor.user_id)).avatar_object
        await s.execute(
            update(profiles)
            .where(profiles.c.user_id == actor.user_id)
            .values(avatar_object=None, avatar_content_type=None, avatar_updated_at=None, updated_at=now)
        )
        row = (await s.execute(select(profiles).where(profiles.c.user_id == actor.user_id))).one()
    if old:
        await _delete_object(deps.avatars, old)
    return _public(row)


async def forget_user(event: UserDeleted, ctx: Ctx, deps: ProfileDeps) -> None:
    """A deleted user leaves no profile and no avatar behind."""
    async with deps.db.transaction() as s:
        gone = (
            await s.execute(
                delete(profiles)
                .where(profiles.c.user_id == event.user_id)
                .returning(profiles.c.avatar_object)
            )
        ).first()
    if gone is not None and gone.avatar_object:
        await _delete_object(deps.avatars, gone.avatar_object)


async def _delete_object(store: ObjectStore, name: str) -> None:
    try:
        await store.delete(name)
    except Exception as exc:  # already gone, or the store is briefly away: the row no longer points to it
        log_fields(log, logging.WARNING, "avatar object not deleted", object=name, error=repr(exc))
