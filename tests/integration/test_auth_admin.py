"""Administration over real NATS, Postgres and HTTP: users, roles, state, sessions, resets, audit."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from contracts.auth import AUTH_STATE_BUCKET, USER_CHANGED, USER_DELETED, UserChanged, UserDeleted, UserState
from contracts.streams import AUTH_STREAM
from services.auth.admin import ensure_admin
from services.auth.tables import users
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login, unique_email
from tests.integration.test_auth_support import last_link_token


async def test_admin_create_is_idempotent_and_promotes(
    stack: Stack, http: httpx.AsyncClient, auth_db: Database
) -> None:
    email = unique_email("boss")
    first = await ensure_admin(auth_db, email, PASSWORD, nc=stack.nc)
    again = await ensure_admin(auth_db, email, "a different sturdy password", nc=stack.nc)
    assert (first.outcome, again.outcome) == ("created", "unchanged") and first.user_id == again.user_id
    assert (await http.post("/auth/login", json={"email": email, "password": PASSWORD})).status_code == 200
    user = await register_and_login(http)
    promoted = await ensure_admin(auth_db, user.email.upper(), "ignored for existing accounts", nc=stack.nc)
    assert promoted.outcome == "promoted"
    r = await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.json()["user"]["role"] == "admin"


async def test_non_admin_is_forbidden_everywhere(http: httpx.AsyncClient, new_user: AppUser) -> None:
    for method, path in (
        ("GET", "/admin/users"),
        ("GET", "/admin/audit"),
        ("PATCH", f"/admin/users/{new_user.id}"),
        ("DELETE", f"/admin/users/{new_user.id}"),
        ("POST", f"/admin/users/{new_user.id}/sessions/end"),
        ("POST", f"/admin/users/{new_user.id}/password-reset"),
    ):
        r = await http.request(
            method, path, headers=new_user.headers, json={"role": "admin"} if method == "PATCH" else None
        )
        assert r.status_code == 403, (path, r.text)
    assert (await http.get("/auth/me", headers=new_user.headers)).json()["role"] == "user"


async def test_list_users_search_filter_paginate(http: httpx.AsyncClient, new_admin: AppUser) -> None:
    tag = unique_email("findme").split("@")[0]
    made = [await register_and_login(http, f"{tag}-{i}@example.com") for i in range(3)]
    r = await http.get("/admin/users", params={"search": tag, "limit": 2}, headers=new_admin.headers)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 3 and len(page["items"]) == 2
    r = await http.get(
        "/admin/users", params={"search": tag, "limit": 2, "offset": 2}, headers=new_admin.headers
    )
    assert len(r.json()["items"]) == 1
    await http.patch(f"/admin/users/{made[0].id}", json={"is_active": False}, headers=new_admin.headers)
    r = await http.get("/admin/users", params={"search": tag, "state": "inactive"}, headers=new_admin.headers)
    assert [u["id"] for u in r.json()["items"]] == [made[0].id]
    r = await http.get("/admin/users", params={"role": "admin", "limit": 200}, headers=new_admin.headers)
    assert all(u["role"] == "admin" for u in r.json()["items"])
    assert new_admin.id in {u["id"] for u in r.json()["items"]} or r.json()["total"] > 200
    r = await http.get("/admin/users", params={"search": "%"}, headers=new_admin.headers)
    assert r.status_code == 200  # a wildcard is a literal, not "everything"
    assert all("%" in u["email"] or "%" in (u["full_name"] or "") for u in r.json()["items"])


async def test_deactivation_takes_effect_on_the_next_request(
    http: httpx.AsyncClient, stack: Stack, new_admin: AppUser
) -> None:
    user = await register_and_login(http)
    r = await http.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False
    r = await http.get("/auth/me", headers=user.headers)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] in ("inactive", "revoked")
    assert (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).status_code == 401
    assert (
        await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    ).status_code == 401
    kv = await stack.nc.jetstream().key_value(AUTH_STATE_BUCKET)
    state = UserState.model_validate_json((await kv.get(f"user.{user.id}")).value)
    assert state.active is False
    last = await stack.nc.jetstream().get_last_msg(AUTH_STREAM.name, USER_CHANGED.subject)
    event = UserChanged.model_validate_json(last.data)
    assert event.user_id.hex == user.id.replace("-", "") and event.is_active is False
    # Reactivated: the user signs in again (old sessions stay ended).
    await http.patch(f"/admin/users/{user.id}", json={"is_active": True}, headers=new_admin.headers)
    assert (await http.get("/auth/me", headers=user.headers)).status_code == 401
    r = await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    ).status_code == 200


async def test_role_changes_apply_at_once(http: httpx.AsyncClient, new_admin: AppUser) -> None:
    user = await register_and_login(http)
    r = await http.patch(f"/admin/users/{user.id}", json={"role": "admin"}, headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    # The old token still says "user": refused until refreshed.
    r = await http.get("/auth/me", headers=user.headers)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "role_changed"
    pair = (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).json()
    promoted = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await http.get("/admin/users", headers=promoted)).status_code == 200
    # Demoted again: the admin token is refused on the next request, admin routes too.
    await http.patch(f"/admin/users/{user.id}", json={"role": "user"}, headers=new_admin.headers)
    assert (await http.get("/admin/users", headers=promoted)).status_code == 401
    pair = (await http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
    r = await http.get("/admin/users", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status_code == 403


async def test_last_active_admin_cannot_be_demoted_or_deactivated(
    http: httpx.AsyncClient, stack: Stack, new_admin: AppUser, auth_db: Database
) -> None:
    # Make this admin the only active one for the duration of the test.
    async with auth_db.transaction() as s:
        others = list(
            (
                await s.execute(
                    update(users)
                    .where(users.c.role == "admin", users.c.is_active, users.c.id != new_admin.id)
                    .values(is_active=False)
                    .returning(users.c.id)
                )
            ).scalars()
        )
    try:
        for change in ({"role": "user"}, {"is_active": False}):
            r = await http.patch(f"/admin/users/{new_admin.id}", json=change, headers=new_admin.headers)
            assert r.status_code == 409, r.text
        assert (
            await http.delete(f"/admin/users/{new_admin.id}", headers=new_admin.headers)
        ).status_code == 409
        async with auth_db.session() as s:
            row = (await s.execute(select(users).where(users.c.id == new_admin.id))).one()
        assert row.role == "admin" and row.is_active
        assert (await http.get("/admin/users", headers=new_admin.headers)).status_code == 200
    finally:
        async with auth_db.transaction() as s:
            await s.execute(update(users).where(users.c.id.in_(others)).values(is_active=True))


async def test_admin_patch_refuses_other_fields(
    http: httpx.AsyncClient, new_admin: AppUser, auth_db: Database
) -> None:
    # An account whose address is not confirmed: the PATCH must not be able to confirm it either.
    email = unique_email()
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user = AppUser(r.json()["id"], email, PASSWORD, "", "")
    for body in (
        {"email": "x@example.com"},
        {"email_verified": True},
        {"id": new_admin.id},
        {"password_hash": "x"},
        {"role": "root"},
    ):
        r = await http.patch(f"/admin/users/{user.id}", json=body, headers=new_admin.headers)
        assert r.status_code == 422, body
    async with auth_db.session() as s:
        row = (await s.execute(select(users).where(users.c.id == user.id))).one()
    assert (row.email, row.email_verified, row.role) == (user.email, False, "user")
    r = await http.patch(
        "/admin/users/00000000-0000-0000-0000-000000000000", json={"role": "admin"}, headers=new_admin.headers
    )
    assert r.status_code == 404


async def test_admin_ends_sessions_and_starts_a_reset(
    http: httpx.AsyncClient, stack: Stack, new_admin: AppUser
) -> None:
    user = await register_and_login(http)
    r = await http.post(f"/admin/users/{user.id}/sessions/end", headers=new_admin.headers)
    assert r.status_code == 200
    assert (await http.get("/auth/me", headers=user.headers)).status_code == 401
    assert (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).status_code == 401
    r = await http.post(f"/admin/users/{user.id}/password-reset", headers=new_admin.headers)
    assert r.status_code == 200
    token = last_link_token(stack, user.email, "reset")
    r = await http.post(
        "/auth/password/reset", json={"token": token, "new_password": "fresh sturdy passphrase 3"}
    )
    assert r.status_code == 200
    assert (
        await http.post("/auth/login", json={"email": user.email, "password": "fresh sturdy passphrase 3"})
    ).status_code == 200


async def test_audit_trail_lists_and_filters_without_secrets(
    http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    user = await register_and_login(http)
    await http.post("/auth/login", json={"email": user.email, "password": "wrong password for audit"})
    await http.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=new_admin.headers)
    r = await http.get("/admin/audit", params={"target_id": user.id, "limit": 100}, headers=new_admin.headers)
    assert r.status_code == 200
    entries = r.json()["items"]
    actions = {e["action"] for e in entries}
    assert {
        "user.registered",
        "login.succeeded",
        "login.failed",
        "user.deactivated",
        "session.ended",
    } <= actions
    deactivated = next(e for e in entries if e["action"] == "user.deactivated")
    assert (
        deactivated["actor_id"] == new_admin.id
        and deactivated["ip"] == "127.0.0.1"
        and deactivated["request_id"]
    )
    r = await http.get(
        "/admin/audit", params={"target_id": user.id, "action": "login."}, headers=new_admin.headers
    )
    assert {e["action"] for e in r.json()["items"]} == {"login.succeeded", "login.failed"}
    r = await http.get(
        "/admin/audit",
        params={"actor_id": new_admin.id, "action": "user.deactivated"},
        headers=new_admin.headers,
    )
    assert r.json()["total"] >= 1
    text = str(entries)
    for secret in (PASSWORD, "wrong password for audit", user.access_token, user.refresh_token):
        assert secret not in text


async def test_admin_deletes_an_account(
    http: httpx.AsyncClient, stack: Stack, new_admin: AppUser, auth_db: Database
) -> None:
    user = await register_and_login(http)
    r = await http.delete(f"/admin/users/{user.id}", headers=new_admin.headers)
    assert r.status_code == 200, r.text
    assert (await http.get("/auth/me", headers=user.headers)).status_code == 401
    assert (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).status_code == 401
    assert (
        await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    ).status_code == 401
    async with auth_db.session() as s:
        assert (await s.execute(select(users).where(users.c.id == user.id))).one_or_none() is None
    last = await stack.nc.jetstream().get_last_msg(AUTH_STREAM.name, USER_DELETED.subject)
    assert str(UserDeleted.model_validate_json(last.data).user_id) == user.id
    assert (await http.delete(f"/admin/users/{user.id}", headers=new_admin.headers)).status_code == 404
    # The address is free again.
    assert (
        await http.post("/auth/register", json={"email": user.email, "password": PASSWORD})
    ).status_code == 201
