"""The permissions service's subscribers: thin translations from bus messages to handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from contracts import Empty
from contracts.auth import USER_DELETED, USER_REGISTERED, UserDeleted, UserRegistered
from contracts.permissions import (
    ACCESS_CHECK,
    ADMIN_APP_SETTINGS,
    ADMIN_APPS,
    APP_ANNOUNCED,
    GRANT,
    GROUP_CREATE,
    GROUP_DELETE,
    GROUP_DIRECTORY,
    GROUP_GRANT_ADD,
    GROUP_GRANT_REMOVE,
    GROUP_MEMBER_ADD,
    GROUP_MEMBER_REMOVE,
    GROUP_UPDATE,
    GROUPS_LIST,
    MY_APPS,
    MY_GROUPS,
    PERMISSIONS_CHANGED,
    REVOKE,
    USER_GRANTS,
    AccessCheck,
    AppManifest,
    AppSettingsUpdate,
    GroupCreate,
    GroupGrantChange,
    GroupMemberChange,
    GroupRef,
    GroupUpdate,
    PermissionsChanged,
    UserGrantChange,
    UserRef,
)
from services.kit.bus import Ctx, Service
from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.logging import log_fields

from . import handlers

log = logging.getLogger("atrium.permissions")

# Announcements repeat every 30 s forever; keep only the recent ones in the stream.
ANNOUNCEMENTS_KEPT = 500
PRUNE_EVERY_S = 600.0


async def prune_announcements_once(js: Any, keep: int = ANNOUNCEMENTS_KEPT) -> None:
    """Drop all but the latest `keep` announcements (the registry already holds what they said)."""
    await js.purge_stream(APP_ANNOUNCED.stream, subject=APP_ANNOUNCED.subject, keep=keep)


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    db = Database(settings.database_url, settings.schema)
    svc.health_checks["postgres"] = db.ping
    svc.on_shutdown.append(db.dispose)

    async def publish_changed(event: PermissionsChanged) -> None:
        await svc.publish(PERMISSIONS_CHANGED, event)

    deps = handlers.PermDeps(db=db, publish_changed=publish_changed)

    @svc.on_event(APP_ANNOUNCED, durable="permissions_app_announced")
    async def on_announced(event: AppManifest, ctx: Ctx) -> None:
        await handlers.record_announcement(event, deps)

    @svc.on_event(USER_REGISTERED, durable="permissions_user_registered")
    async def on_registered(event: UserRegistered, ctx: Ctx) -> None:
        await handlers.apply_default_grants(event, deps, ctx)

    @svc.on_event(USER_DELETED, durable="permissions_user_deleted")
    async def on_user_deleted(event: UserDeleted, ctx: Ctx) -> None:
        await handlers.forget_user(event.user_id, deps, ctx)

    @svc.rpc(ACCESS_CHECK)
    async def access_check(cmd: AccessCheck, ctx: Ctx):
        return await handlers.access_check(cmd, deps, ctx)

    @svc.rpc(MY_APPS)
    async def my_apps(_: Empty, ctx: Ctx):
        return await handlers.my_apps(deps, ctx)

    @svc.rpc(ADMIN_APPS)
    async def admin_apps(_: Empty, ctx: Ctx):
        return await handlers.admin_apps(deps, ctx)

    @svc.rpc(ADMIN_APP_SETTINGS)
    async def configure_app(cmd: AppSettingsUpdate, ctx: Ctx):
        return await handlers.configure_app(cmd, deps, ctx)

    @svc.rpc(USER_GRANTS)
    async def user_grants(cmd: UserRef, ctx: Ctx):
        return await handlers.user_grants_of(cmd, deps, ctx)

    @svc.rpc(GRANT)
    async def grant(cmd: UserGrantChange, ctx: Ctx):
        return await handlers.grant(cmd, deps, ctx)

    @svc.rpc(REVOKE)
    async def revoke(cmd: UserGrantChange, ctx: Ctx):
        await handlers.revoke(cmd, deps, ctx)
        return Empty()

    @svc.rpc(GROUPS_LIST)
    async def list_groups(_: Empty, ctx: Ctx):
        return await handlers.list_groups(deps, ctx)

    @svc.rpc(MY_GROUPS)
    async def my_groups(_: Empty, ctx: Ctx):
        return await handlers.my_groups(deps, ctx)

    @svc.rpc(GROUP_DIRECTORY)
    async def group_directory(_: Empty, ctx: Ctx):
        return await handlers.group_directory(deps, ctx)

    @svc.rpc(GROUP_CREATE)
    async def create_group(cmd: GroupCreate, ctx: Ctx):
        return await handlers.create_group(cmd, deps, ctx)

    @svc.rpc(GROUP_UPDATE)
    async def update_group(cmd: GroupUpdate, ctx: Ctx):
        return await handlers.update_group(cmd, deps, ctx)

    @svc.rpc(GROUP_DELETE)
    async def delete_group(cmd: GroupRef, ctx: Ctx):
        await handlers.delete_group(cmd, deps, ctx)
        return Empty()

    @svc.rpc(GROUP_MEMBER_ADD)
    async def add_member(cmd: GroupMemberChange, ctx: Ctx):
        return await handlers.add_member(cmd, deps, ctx)

    @svc.rpc(GROUP_MEMBER_REMOVE)
    async def remove_member(cmd: GroupMemberChange, ctx: Ctx):
        return await handlers.remove_member(cmd, deps, ctx)

    @svc.rpc(GROUP_GRANT_ADD)
    async def grant_group(cmd: GroupGrantChange, ctx: Ctx):
        return await handlers.grant_group(cmd, deps, ctx)

    @svc.rpc(GROUP_GRANT_REMOVE)
    async def revoke_group(cmd: GroupGrantChange, ctx: Ctx):
        return await handlers.revoke_group(cmd, deps, ctx)

    prune_task: asyncio.Task[None] | None = None

    async def prune_announcements() -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            try:
                await prune_announcements_once(svc.js)
            except Exception as exc:
                log_fields(log, logging.WARNING, "pruning app announcements failed", error=repr(exc))

    async def start_pruning() -> None:
        nonlocal prune_task
        prune_task = asyncio.create_task(prune_announcements())

    async def stop_pruning() -> None:
        if prune_task is not None:
            prune_task.cancel()

    svc.on_startup.append(start_pruning)
    svc.on_shutdown.append(stop_pruning)
    return svc
