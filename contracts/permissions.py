"""Permissions service: the app registry, per-user and per-group grants, and the access check.

Apps announce themselves (`events.apps.announced`, see `services.kit.apps.announce_app`); the
permissions service keeps the registry. The owner of an app's data asks `permissions.access.check`
with the user's own token (through `services.kit.apps.AppAccessGuard`, which caches the answer
until `events.permissions.changed` says otherwise).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from .base import Contract, Empty, Event, Rpc, Text, health_rpc
from .streams import PERMISSIONS_STREAM

# An app key is one lowercase subject-safe token: it appears in routes and in grants.
APP_KEY_PATTERN = r"^[a-z][a-z0-9_-]{1,39}$"

# How often a running app announces itself, and after how long without one it counts as unavailable.
ANNOUNCE_INTERVAL_S = 30.0
UNAVAILABLE_AFTER_S = 3 * ANNOUNCE_INTERVAL_S


class AppManifest(Contract):
    """What an app says about itself when it announces."""

    key: str = Field(pattern=APP_KEY_PATTERN)
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=500)
    icon: str = Field(default="", max_length=80)  # an icon name the web app knows, e.g. "file-text"
    route: str = Field(pattern=r"^/[a-z0-9/_-]*$", max_length=120)  # where the web app shows it
    default_grant: bool = False  # new users get it unless an admin configured otherwise
    version: str = Field(default="", max_length=40)
    announced_at: datetime | None = None  # set by announce_app; a replayed announcement is not "seen now"


class AppPublic(Contract):
    """An app as a user sees it on the Apps page."""

    key: str
    name: str
    description: str = ""
    icon: str = ""
    route: str
    available: bool = True


class AppAdmin(AppPublic):
    """An app as the admin area sees it."""

    version: str = ""
    default_grant: bool  # effective: the admin's setting if any, else the manifest's
    manifest_default_grant: bool
    default_grant_override: bool | None = None
    first_seen_at: datetime
    last_seen_at: datetime


class AppList(Contract):
    apps: list[AppPublic]


class AdminAppList(Contract):
    apps: list[AppAdmin]


class AppSettingsPatch(Contract):
    """The admin's configuration of an app: `default_grant` null = follow the manifest."""

    default_grant: bool | None = None


class AppSettingsUpdate(AppSettingsPatch):
    app_key: str = Field(pattern=APP_KEY_PATTERN)


class AccessCheck(Contract):
    user_id: UUID
    app_key: str = Field(pattern=APP_KEY_PATTERN)


class AccessDecision(Contract):
    allowed: bool
    reason: Literal["admin", "direct_grant", "group_grant", "no_grant"]


# ---- grants ---------------------------------------------------------------------------------------


class UserRef(Contract):
    user_id: UUID


class UserGrantChange(Contract):
    user_id: UUID
    app_key: str = Field(pattern=APP_KEY_PATTERN)


class GrantPublic(Contract):
    user_id: UUID
    app_key: str
    granted_by: UUID | None = None  # None: a default grant applied at registration
    granted_at: datetime


class GroupGrantRef(Contract):
    group_id: UUID
    group_name: str
    app_key: str


class UserGrants(Contract):
    user_id: UUID
    direct: list[GrantPublic]
    via_groups: list[GroupGrantRef]
    effective: list[str]  # app keys: direct ∪ group grants


# ---- groups ---------------------------------------------------------------------------------------


class GroupCreate(Contract):
    name: Text = Field(min_length=1, max_length=80)
    description: Text = Field(default="", max_length=500)


class GroupPatch(Contract):
    """Only the fields sent (not null) change."""

    name: Text | None = Field(default=None, min_length=1, max_length=80)
    description: Text | None = Field(default=None, max_length=500)


class GroupUpdate(GroupPatch):
    group_id: UUID


class GroupRef(Contract):
    group_id: UUID


class GroupMemberChange(Contract):
    group_id: UUID
    user_id: UUID


class GroupGrantChange(Contract):
    group_id: UUID
    app_key: str = Field(pattern=APP_KEY_PATTERN)


class GroupPublic(Contract):
    id: UUID
    name: str
    description: str = ""
    member_ids: list[UUID]
    app_keys: list[str]
    created_at: datetime
    updated_at: datetime


class GroupList(Contract):
    groups: list[GroupPublic]


# ---- events ---------------------------------------------------------------------------------------

PermissionChange = Literal[
    "granted",
    "revoked",
    "group_granted",
    "group_revoked",
    "member_added",
    "member_removed",
    "group_created",
    "group_updated",
    "group_deleted",
    "app_configured",
    "user_deleted",
]


class PermissionsChanged(Contract):
    """Whose access may have changed. `app_key` is None when several apps may be affected
    (a membership change, a deleted group): a cache should forget everything about these users."""

    user_ids: list[UUID]
    app_key: str | None = None
    change: PermissionChange
    at: datetime


PERMISSIONS_HEALTH = health_rpc("permissions")

ACCESS_CHECK = Rpc(
    "permissions.access.check",
    AccessCheck,
    AccessDecision,
    access="user",
    summary="May this user use this app? A user may only ask about themselves, an admin about anyone",
)
MY_APPS = Rpc(
    "permissions.apps.mine",
    Empty,
    AppList,
    access="user",
    summary="The caller's granted, available apps (the Apps page)",
)
ADMIN_APPS = Rpc(
    "permissions.apps.list",
    Empty,
    AdminAppList,
    access="admin",
    summary="Every app the registry knows, available or not",
)
ADMIN_APP_SETTINGS = Rpc(
    "permissions.apps.configure",
    AppSettingsUpdate,
    AppAdmin,
    access="admin",
    summary="Set whether new users get an app by default",
)
USER_GRANTS = Rpc(
    "permissions.grants.list",
    UserRef,
    UserGrants,
    access="admin",
    summary="A user's direct, group and effective grants",
)
GRANT = Rpc(
    "permissions.grants.grant",
    UserGrantChange,
    GrantPublic,
    access="admin",
    summary="Grant an app to a user (idempotent)",
)
REVOKE = Rpc(
    "permissions.grants.revoke",
    UserGrantChange,
    Empty,
    access="admin",
    summary="Revoke a user's direct grant (idempotent)",
)
GROUPS_LIST = Rpc("permissions.groups.list", Empty, GroupList, access="admin", summary="All groups")
GROUP_CREATE = Rpc(
    "permissions.groups.create", GroupCreate, GroupPublic, access="admin", summary="Create a group"
)
GROUP_UPDATE = Rpc(
    "permissions.groups.update",
    GroupUpdate,
    GroupPublic,
    access="admin",
    summary="Rename or describe a group",
)
GROUP_DELETE = Rpc(
    "permissions.groups.delete",
    GroupRef,
    Empty,
    access="admin",
    summary="Delete a group with its memberships and grants",
)
GROUP_MEMBER_ADD = Rpc(
    "permissions.groups.member_add",
    GroupMemberChange,
    GroupPublic,
    access="admin",
    summary="Add a user to a group (idempotent)",
)
GROUP_MEMBER_REMOVE = Rpc(
    "permissions.groups.member_remove",
    GroupMemberChange,
    GroupPublic,
    access="admin",
    summary="Remove a user from a group (idempotent)",
)
GROUP_GRANT_ADD = Rpc(
    "permissions.groups.grant",
    GroupGrantChange,
    GroupPublic,
    access="admin",
    summary="Grant an app to every member of a group (idempotent)",
)
GROUP_GRANT_REMOVE = Rpc(
    "permissions.groups.revoke",
    GroupGrantChange,
    GroupPublic,
    access="admin",
    summary="Revoke a group's grant (idempotent)",
)

APP_ANNOUNCED = Event(
    "events.apps.announced",
    AppManifest,
    stream=PERMISSIONS_STREAM.name,
    summary="An app is running: its manifest (sent at start and every ANNOUNCE_INTERVAL_S)",
)
PERMISSIONS_CHANGED = Event(
    "events.permissions.changed",
    PermissionsChanged,
    stream=PERMISSIONS_STREAM.name,
    summary="Some users' access changed; caches of access decisions forget them",
)
