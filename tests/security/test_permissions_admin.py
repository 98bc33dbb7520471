"""A non-admin can neither grant, revoke nor read anyone's grants or profile: 403 on every admin
endpoint and on the admin subjects straight on the bus (the service checks the role itself)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contracts import AtriumError, Empty
from contracts.permissions import (
    ADMIN_APPS,
    GRANT,
    GROUP_CREATE,
    GROUP_MEMBER_ADD,
    GROUPS_LIST,
    REVOKE,
    USER_GRANTS,
)
from contracts.profile import PROFILE_GET_USER
from services.kit.client import call
from tests.conftest import AppUser, Stack, register_and_login


async def test_admin_endpoints_refuse_a_user(http: httpx.AsyncClient, new_user: AppUser) -> None:
    other = await register_and_login(http)
    gid = uuid.uuid4()
    h = new_user.headers
    attempts = [
        ("GET", "/admin/apps"),
        ("PATCH", "/admin/apps/documents", {"default_grant": True}),
        ("GET", f"/admin/users/{other.id}/grants"),
        ("GET", f"/admin/users/{new_user.id}/grants"),
        ("PUT", f"/admin/users/{new_user.id}/grants/documents"),
        ("DELETE", f"/admin/users/{other.id}/grants/documents"),
        ("GET", "/admin/groups"),
        ("POST", "/admin/groups", {"name": "sneaky"}),
        ("PATCH", f"/admin/groups/{gid}", {"name": "sneaky"}),
        ("DELETE", f"/admin/groups/{gid}"),
        ("PUT", f"/admin/groups/{gid}/members/{new_user.id}"),
        ("DELETE", f"/admin/groups/{gid}/members/{other.id}"),
        ("PUT", f"/admin/groups/{gid}/grants/documents"),
        ("DELETE", f"/admin/groups/{gid}/grants/documents"),
    ]
    for method, path, *body in attempts:
        r = await http.request(method, path, json=body[0] if body else None, headers=h)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    http.cookies.clear()  # signing in left the other user's session cookies in this client
    for method, path, *body in attempts[:3]:
        r = await http.request(method, path, json=body[0] if body else None)
        assert r.status_code == 401, (method, path, r.text)


async def test_admin_subjects_refuse_a_user_on_the_bus(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = await register_and_login(http)
    calls = [
        (ADMIN_APPS, Empty()),
        (USER_GRANTS, {"user_id": other.id}),
        (GRANT, {"user_id": new_user.id, "app_key": "documents"}),
        (REVOKE, {"user_id": other.id, "app_key": "documents"}),
        (GROUPS_LIST, Empty()),
        (GROUP_CREATE, {"name": "sneaky"}),
        (GROUP_MEMBER_ADD, {"group_id": str(uuid.uuid4()), "user_id": new_user.id}),
        (PROFILE_GET_USER, {"user_id": other.id}),
    ]
    for desc, payload in calls:
        with pytest.raises(AtriumError) as err:
            await call(stack.nc, desc, payload, token=new_user.access_token)
        assert err.value.code == "forbidden", desc.subject
        with pytest.raises(AtriumError) as err:
            await call(stack.nc, desc, payload)
        assert err.value.code == "unauthenticated", desc.subject


async def test_an_admin_may(stack: Stack, new_admin: AppUser, new_user: AppUser) -> None:
    grants = await call(stack.nc, USER_GRANTS, {"user_id": new_user.id}, token=new_admin.access_token)
    assert str(grants.user_id) == new_user.id
    profile = await call(stack.nc, PROFILE_GET_USER, {"user_id": new_user.id}, token=new_admin.access_token)
    assert str(profile.user_id) == new_user.id
