"""`/api/v1/admin/…`: the app registry, grants and groups (thin routes over `permissions.*`, admin only —
the permissions service checks the role itself)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Path, Response

from contracts import Empty
from contracts.permissions import (
    ADMIN_APP_SETTINGS,
    ADMIN_APPS,
    APP_KEY_PATTERN,
    GRANT,
    GROUP_CREATE,
    GROUP_DELETE,
    GROUP_GRANT_ADD,
    GROUP_GRANT_REMOVE,
    GROUP_MEMBER_ADD,
    GROUP_MEMBER_REMOVE,
    GROUP_UPDATE,
    GROUPS_LIST,
    REVOKE,
    USER_GRANTS,
    AdminAppList,
    AppAdmin,
    AppSettingsPatch,
    GrantPublic,
    GroupCreate,
    GroupList,
    GroupPatch,
    GroupPublic,
    UserGrants,
)

from ..bus import Call
from ..errors import errors
from ..transport import Token

router = APIRouter(prefix="/admin", tags=["admin: permissions"], responses=errors(401, 403))

AppKeyPath = Path(pattern=APP_KEY_PATTERN, description="An app key, e.g. documents")


@router.get("/apps", response_model=AdminAppList, summary="Every app the registry knows")
async def list_apps(call: Call, token: Token) -> AdminAppList:
    return await call(ADMIN_APPS, Empty(), token=token)


@router.patch(
    "/apps/{app_key}",
    response_model=AppAdmin,
    summary="Whether new users get this app by default",
    responses=errors(404),
)
async def configure_app(
    body: AppSettingsPatch, call: Call, token: Token, app_key: str = AppKeyPath
) -> AppAdmin:
    return await call(ADMIN_APP_SETTINGS, {**body.model_dump(), "app_key": app_key}, token=token)


@router.get(
    "/users/{user_id}/grants", response_model=UserGrants, summary="A user's grants", responses=errors(404)
)
async def user_grants(user_id: UUID, call: Call, token: Token) -> UserGrants:
    return await call(USER_GRANTS, {"user_id": user_id}, token=token)


@router.put(
    "/users/{user_id}/grants/{app_key}",
    response_model=GrantPublic,
    summary="Grant an app to a user",
    responses=errors(404),
)
async def grant(user_id: UUID, call: Call, token: Token, app_key: str = AppKeyPath) -> GrantPublic:
    return await call(GRANT, {"user_id": user_id, "app_key": app_key}, token=token)


@router.delete(
    "/users/{user_id}/grants/{app_key}",
    status_code=204,
    summary="Revoke a user's grant",
    responses=errors(404),
)
async def revoke(user_id: UUID, call: Call, token: Token, app_key: str = AppKeyPath) -> Response:
    await call(REVOKE, {"user_id": user_id, "app_key": app_key}, token=token)
    return Response(status_code=204)


@router.get("/groups", response_model=GroupList, summary="All groups")
async def list_groups(call: Call, token: Token) -> GroupList:
    return await call(GROUPS_LIST, Empty(), token=token)


@router.post(
    "/groups", status_code=201, response_model=GroupPublic, summary="Create a group", responses=errors(409)
)
async def create_group(body: GroupCreate, call: Call, token: Token) -> GroupPublic:
    return await call(GROUP_CREATE, body, token=token)


@router.patch(
    "/groups/{group_id}",
    response_model=GroupPublic,
    summary="Rename or describe a group",
    responses=errors(404, 409),
)
async def update_group(group_id: UUID, body: GroupPatch, call: Call, token: Token) -> GroupPublic:
    return await call(GROUP_UPDATE, {**body.model_dump(), "group_id": group_id}, token=token)


@router.delete("/groups/{group_id}", status_code=204, summary="Delete a group", responses=errors(404))
async def delete_group(group_id: UUID, call: Call, token: Token) -> Response:
    await call(GROUP_DELETE, {"group_id": group_id}, token=token)
    return Response(status_code=204)


@router.put(
    "/groups/{group_id}/members/{user_id}",
    response_model=GroupPublic,
    summary="Add a member",
    responses=errors(404),
)
async def add_member(group_id: UUID, user_id: UUID, call: Call, token: Token) -> GroupPublic:
    return await call(GROUP_MEMBER_ADD, {"group_id": group_id, "user_id": user_id}, token=token)


@router.delete(
    "/groups/{group_id}/members/{user_id}",
    response_model=GroupPublic,
    summary="Remove a member",
    responses=errors(404),
)
async def remove_member(group_id: UUID, user_id: UUID, call: Call, token: Token) -> GroupPublic:
    return await call(GROUP_MEMBER_REMOVE, {"group_id": group_id, "user_id": user_id}, token=token)


@router.put(
    "/groups/{group_id}/grants/{app_key}",
    response_model=GroupPublic,
    summary="Grant an app to a group",
    responses=errors(404),
)
async def grant_group(group_id: UUID, call: Call, token: Token, app_key: str = AppKeyPath) -> GroupPublic:
    return await call(GROUP_GRANT_ADD, {"group_id": group_id, "app_key": app_key}, token=token)


@router.delete(
    "/groups/{group_id}/grants/{app_key}",
    response_model=GroupPublic,
    summary="Revoke a group's grant",
    responses=errors(404),
)
async def revoke_group(group_id: UUID, call: Call, token: Token, app_key: str = AppKeyPath) -> GroupPublic:
    return await call(GROUP_GRANT_REMOVE, {"group_id": group_id, "app_key": app_key}, token=token)
