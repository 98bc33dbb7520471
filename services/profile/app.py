"""The profile service's subscribers: thin translations from bus messages to handlers."""

from __future__ import annotations

from contracts import Empty
from contracts.auth import USER_DELETED, USER_REGISTERED, UserDeleted, UserRegistered
from contracts.profile import (
    AVATAR_BUCKET,
    AVATAR_DELETE,
    AVATAR_GET,
    AVATAR_SET,
    PROFILE_GET,
    PROFILE_GET_USER,
    PROFILE_UPDATE,
    AvatarUpload,
    ProfileUpdate,
    UserProfileRef,
)
from services.kit.bus import Ctx, Service, ensure_object_store
from services.kit.config import ServiceSettings
from services.kit.db import Database

from . import handlers


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    db = Database(settings.database_url, settings.schema)
    svc.health_checks["postgres"] = db.ping
    svc.on_shutdown.append(db.dispose)
    deps = handlers.ProfileDeps(db=db)

    async def open_avatar_store() -> None:
        deps.avatars = await ensure_object_store(svc.js, AVATAR_BUCKET)

    svc.on_startup.append(open_avatar_store)

    @svc.on_event(USER_REGISTERED, durable="profile_user_registered")
    async def on_registered(event: UserRegistered, ctx: Ctx) -> None:
        await handlers.on_user_registered(event, deps, ctx)

    @svc.on_event(USER_DELETED, durable="profile_user_deleted")
    async def on_user_deleted(event: UserDeleted, ctx: Ctx) -> None:
        await handlers.forget_user(event.user_id, deps, ctx)

    @svc.rpc(PROFILE_GET)
    async def get_profile(_: Empty, ctx: Ctx):
        return await handlers.get_profile(deps, ctx)

    @svc.rpc(PROFILE_UPDATE)
    async def update_profile(cmd: ProfileUpdate, ctx: Ctx):
        return await handlers.update_profile(cmd, deps, ctx)

    @svc.rpc(PROFILE_GET_USER)
    async def get_user_profile(cmd: UserProfileRef, ctx: Ctx):
        return await handlers.get_user_profile(cmd, deps, ctx)

    @svc.rpc(AVATAR_SET)
    async def set_avatar(cmd: AvatarUpload, ctx: Ctx):
        return await handlers.set_avatar(cmd, deps, ctx)

    @svc.rpc(AVATAR_GET)
    async def get_avatar(_: Empty, ctx: Ctx):
        return await handlers.get_avatar(deps, ctx)

    @svc.rpc(AVATAR_DELETE)
    async def delete_avatar(_: Empty, ctx: Ctx):
        return await handlers.delete_avatar(deps, ctx)

    return svc
