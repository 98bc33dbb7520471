"""The permissions service: its subjects, bound to handlers, its loops and its dependency factory."""

from __future__ import annotations

from typing import Any

from contracts.auth import USER_DELETED, USER_REGISTERED
from contracts.identity import SSO_GROUPS_CLAIMED
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
    REVOKE,
    USER_GRANTS,
)
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.wiring import Consumer, EventTable, Loop, RpcTable

from . import tables
from .handlers import access, grants, groups, registry
from .handlers.common import PermDeps

# Announcements repeat every 30 s forever; keep only the recent ones in the stream.
ANNOUNCEMENTS_KEPT = 500
PRUNE_EVERY_S = 600.0

RPCS: RpcTable[PermDeps] = {
    ACCESS_CHECK: access.access_check,
    MY_APPS: registry.my_apps,
    ADMIN_APPS: registry.admin_apps,
    ADMIN_APP_SETTINGS: registry.configure_app,
    USER_GRANTS: grants.user_grants_of,
    GRANT: grants.grant,
    REVOKE: grants.revoke,
    GROUPS_LIST: groups.list_groups,
    MY_GROUPS: groups.my_groups,
    GROUP_DIRECTORY: groups.group_directory,
    GROUP_CREATE: groups.create_group,
    GROUP_UPDATE: groups.update_group,
    GROUP_DELETE: groups.delete_group,
    GROUP_MEMBER_ADD: groups.add_member,
    GROUP_MEMBER_REMOVE: groups.remove_member,
    GROUP_GRANT_ADD: groups.grant_group,
    GROUP_GRANT_REMOVE: groups.revoke_group,
}
EVENTS: EventTable[PermDeps] = {
    APP_ANNOUNCED: Consumer(registry.record_announcement, "permissions_app_announced"),
    USER_REGISTERED: Consumer(access.apply_default_grants, "permissions_user_registered"),
    USER_DELETED: Consumer(grants.forget_user, "permissions_user_deleted"),
    SSO_GROUPS_CLAIMED: Consumer(groups.apply_sso_groups, "permissions_sso_groups"),
}


async def prune_announcements_once(js: Any, keep: int = ANNOUNCEMENTS_KEPT) -> None:
    """Drop all but the latest `keep` announcements (the registry already holds what they said)."""
    await js.purge_stream(APP_ANNOUNCED.stream, subject=APP_ANNOUNCED.subject, keep=keep)


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)

    async def make_deps(svc: Service) -> PermDeps:
        db = svc.database()
        return PermDeps(db=db, outbox=svc.outbox(tables.outbox, db))

    async def prune_announcements(_: PermDeps) -> None:
        await prune_announcements_once(svc.js)

    svc.bind(
        make_deps,
        rpcs=RPCS,
        events=EVENTS,
        loops=[Loop("prune-announcements", prune_announcements, every_s=PRUNE_EVERY_S)],
    )
    return svc
