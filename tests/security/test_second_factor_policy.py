"""The administrator's second-factor policy, enforced by every service, not only by the web app: an account
the policy covers that has no second factor may only set one up (and read or end its sessions, sign out)
until it has; every other request, in any service and with any of its tokens, is refused with
`forbidden` / `details.reason = "enrol_second_factor"`. Over real NATS, Postgres and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from contracts.identity import ENROL_SECOND_FACTOR, LAST_SECOND_FACTOR
from tests.conftest import AppUser, register_and_login
from tests.integration.test_auth_totp import enrol

ENROL_FIRST = ENROL_SECOND_FACTOR


async def set_policy(http: httpx.AsyncClient, admin: AppUser, second_factor: str) -> None:
    r = await http.put("/admin/security-policy", json={"second_factor": second_factor}, headers=admin.headers)
    assert r.status_code == 200, r.text


@pytest_asyncio.fixture
async def policy(http: httpx.AsyncClient, new_admin: AppUser) -> AsyncIterator[AppUser]:
    """The signed-in admin who sets the policy; it is back to `optional` after the test."""
    try:
        yield new_admin
    finally:
        await set_policy(http, new_admin, "optional")


def refused_to_enrol(r: httpx.Response) -> bool:
    if r.status_code != 403:
        return False
    error: dict[str, Any] = r.json()["error"]
    return (
        error["code"] == "forbidden"
        and error["details"]["reason"] == ENROL_FIRST
        and ("Security page" in error["message"])
    )


async def refresh(http: httpx.AsyncClient, user: AppUser) -> AppUser:
    r = await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 200, r.text
    body = r.json()
    return AppUser(user.id, user.email, user.password, body["access_token"], body["refresh_token"])


async def test_a_session_under_the_policy_without_a_second_factor_can_only_enrol_one(
    http: httpx.AsyncClient, policy: AppUser
) -> None:
    user = await register_and_login(http)
    # A personal access token made before the policy, and a session signed in before it.
    r = await http.post("/auth/tokens", json={"name": "script", "scopes": ["read"]}, headers=user.headers)
    assert r.status_code in (200, 201), r.text
    pat = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await http.get("/categories", headers=pat)).status_code == 200

    await set_policy(http, policy, "everyone")
    # At once, without signing in again: documents, profile, the app list, creating tokens are refused...
    for method, path, body in [
        ("GET", "/categories", None),
        ("GET", "/documents", None),
        ("GET", "/profile", None),
        ("GET", "/apps", None),
        ("POST", "/auth/tokens", {"name": "escape", "scopes": ["read"]}),
    ]:
        r = await http.request(method, path, json=body, headers=user.headers)
        assert refused_to_enrol(r), f"{method} {path}: {r.status_code} {r.text}"
    # ...so is the access token made earlier (its exchange says the account has no second factor)...
    assert refused_to_enrol(await http.get("/categories", headers=pat))
    # ...and a fresh sign-in gets the same limited session.
    r = await http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert r.status_code == 200 and r.json()["user"]["must_enrol_second_factor"] is True
    assert refused_to_enrol(
        await http.get("/profile", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    )
    # What it takes to enrol still works: the account, its factors, its sessions and tokens.
    me = await http.get("/auth/me", headers=user.headers)
    assert me.status_code == 200 and me.json()["must_enrol_second_factor"] is True
    assert (await http.get("/auth/second-factor", headers=user.headers)).json()["required"] is True
    assert (await http.get("/auth/sessions", headers=user.headers)).status_code == 200
    assert (await http.get("/auth/tokens", headers=user.headers)).status_code == 200
    await enrol(http, user)

    # The access token still says "no second factor" until the session is refreshed; then all is open.
    assert refused_to_enrol(await http.get("/categories", headers=user.headers))
    user = await refresh(http, user)
    assert (await http.get("/categories", headers=user.headers)).status_code == 200
    assert (await http.get("/profile", headers=user.headers)).status_code == 200
    assert (await http.get("/auth/me", headers=user.headers)).json()["must_enrol_second_factor"] is False
    # The gateway exchanges the personal token again when its cached access token is refused so.
    assert (await http.get("/categories", headers=pat)).status_code == 200


async def test_loosening_the_policy_lifts_the_limit_at_once_and_admins_only_covers_admins(
    http: httpx.AsyncClient, policy: AppUser
) -> None:
    user = await register_and_login(http)
    await set_policy(http, policy, "admins")
    assert (await http.get("/categories", headers=user.headers)).status_code == 200
    # The admin who set it lacks a second factor too: admin pages are refused, the policy itself is not
    # (setting it never locks its author out).
    assert refused_to_enrol(await http.get("/admin/users", headers=policy.headers))
    assert (await http.get("/admin/security-policy", headers=policy.headers)).status_code == 200
    await set_policy(http, policy, "everyone")
    assert refused_to_enrol(await http.get("/categories", headers=user.headers))
    await set_policy(http, policy, "optional")
    assert (await http.get("/categories", headers=user.headers)).status_code == 200
    assert (await http.get("/admin/users", headers=policy.headers)).status_code == 200


async def test_the_last_second_factor_cannot_be_removed_while_the_policy_requires_one(
    http: httpx.AsyncClient, policy: AppUser
) -> None:
    """Removing it would leave the session's access token unrestricted until its next refresh: refused with
    a clear error (enrol another factor first); with the policy off, it can go."""
    user = await register_and_login(http)
    _, codes = await enrol(http, user)
    user = await refresh(http, user)
    await set_policy(http, policy, "everyone")
    body = {"password": user.password, "code": codes[0]}
    r = await http.post("/auth/totp/disable", json=body, headers=user.headers)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "conflict" and error["details"]["reason"] == LAST_SECOND_FACTOR, error
    assert "set up another" in error["message"], error
    # Nothing changed: the factor is still there and the account unrestricted.
    me = await http.get("/auth/me", headers=user.headers)
    assert me.status_code == 200 and me.json()["must_enrol_second_factor"] is False, me.text
    user = await refresh(http, user)
    assert (await http.get("/categories", headers=user.headers)).status_code == 200

    await set_policy(http, policy, "optional")
    r = await http.post(
        "/auth/totp/disable", json={"password": user.password, "code": codes[1]}, headers=user.headers
    )
    assert r.status_code == 200, r.text
