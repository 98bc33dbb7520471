"""The external authentication server mode against a real OAuth2 server: node oidc-provider with the
password grant registered on it (tests/oidc/provider.mjs). Sign-in through it (accounts created on first
sign-in), its tokens kept encrypted with the session, refreshed before they expire by the loop and
atomically under concurrent demand, a refused refresh ending the session, transient failures retried,
tokens cleared on sign-out, and clear errors when it is down or slow while local administrators still
sign in."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select, update

from services.auth.app import AUTH_SECRETS_PURPOSE
from services.auth.handlers.common import now
from services.auth.tables import external_tokens
from services.kit.db import Database
from services.kit.secretbox import SecretBox
from tests.conftest import PASSWORD, AppUser, Stack, create_admin, unique_email
from tests.oidc.harness import CLIENT_ID, CLIENT_SECRET, OidcProvider

pytestmark = pytest.mark.usefixtures("stack")
TTL_S = 8  # the server's access tokens live 8 s …
BUFFER_S = 5  # … and Atrium refreshes them 5 s before that


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(stack: Stack) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(public_url=os.environ["ATRIUM_PUBLIC_URL"], access_token_ttl=TTL_S)
    await provider.start()
    yield provider
    await provider.stop()


@pytest_asyncio.fixture
async def external_mode(
    http: httpx.AsyncClient, new_admin: AppUser, server: OidcProvider, auth_db: Database
) -> AsyncIterator[dict[str, Any]]:
    settings = {
        "enabled": True,
        "token_url": f"{server.issuer}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "timeout_s": 1.0,
        "refresh_buffer_s": BUFFER_S,
        "circuit_cool_off_s": 3,
    }
    r = await http.put("/admin/external-auth", json=settings, headers=new_admin.headers)
    assert r.status_code == 200, r.text
    await server.control(tokenDelayMs=0, failTokenRequests=0)
    yield {"admin": new_admin, **r.json()}
    r = await http.put("/admin/external-auth", json={"enabled": False}, headers=new_admin.headers)
    assert r.status_code == 200
    async with auth_db.transaction() as s:  # this test's external sessions stop being refreshed
        await s.execute(delete(external_tokens))


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/auth/login", json={"email": email, "password": password})


async def external_user(
    http: httpx.AsyncClient, server: OidcProvider
) -> tuple[dict[str, Any], dict[str, str]]:
    account = await server.add_account(unique_email("ext"))
    r = await sign_in(http, account["email"], account["password"])
    assert r.status_code == 200, r.text
    http.cookies.clear()
    return account, {"Authorization": f"Bearer {r.json()['access_token']}"}


async def token_row(auth_db: Database, user_id: str) -> Any:
    async with auth_db.session() as s:
        return (
            await s.execute(select(external_tokens).where(external_tokens.c.user_id == user_id))
        ).one_or_none()


async def test_the_external_server_checks_passwords_and_its_tokens_are_kept_encrypted(
    http: httpx.AsyncClient, server: OidcProvider, external_mode: dict[str, Any], auth_db: Database
) -> None:
    account, headers = await external_user(http, server)
    me = (await http.get("/auth/me", headers=headers)).json()
    assert me["email"] == account["email"] and me["email_verified"] is True
    r = await http.get("/auth/external/token", headers=headers)
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    async with httpx.AsyncClient() as c:  # a real token of the server: its userinfo endpoint accepts it
        userinfo = await c.get(f"{server.issuer}/me", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == account["id"]
    row = await token_row(auth_db, me["id"])
    assert access not in row.access_enc and row.refresh_enc and row.access_enc.startswith("v1:")
    wrong = await sign_in(http, account["email"], "not the password at all")
    unknown = await sign_in(http, unique_email("nobody"), "whatever it is")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    # a session that signed in locally holds no external token
    admin = external_mode["admin"]
    assert (await http.get("/auth/external/token", headers=admin.headers)).status_code == 404


async def test_tokens_are_refreshed_before_they_expire(
    http: httpx.AsyncClient, server: OidcProvider, external_mode: dict[str, Any], auth_db: Database
) -> None:
    _, headers = await external_user(http, server)
    user_id = (await http.get("/auth/me", headers=headers)).json()["id"]
    first = await token_row(auth_db, user_id)
    for _ in range(150):  # the loop refreshes within the buffer, long before the 8 s are over
        row = await token_row(auth_db, user_id)
        if row.refreshed_at is not None:
            break
        await asyncio.sleep(0.1)
    assert row.refreshed_at is not None and row.expires_at > first.expires_at
    assert row.refreshed_at < first.expires_at  # before the old token expired
    assert row.access_enc != first.access_enc and row.failures == 0


async def test_concurrent_demands_refresh_once(
    http: httpx.AsyncClient, server: OidcProvider, external_mode: dict[str, Any], auth_db: Database
) -> None:
    _, headers = await external_user(http, server)
    user_id = (await http.get("/auth/me", headers=headers)).json()["id"]
    async with auth_db.transaction() as s:  # not due: the loop leaves it alone while the counter is read
        await s.execute(
            update(external_tokens)
            .where(external_tokens.c.user_id == user_id)
            .values(expires_at=now() + timedelta(hours=1))
        )
    before = (await server.control())["refreshRequests"]
    async with auth_db.transaction() as s:  # due now
        await s.execute(
            update(external_tokens)
            .where(external_tokens.c.user_id == user_id)
            .values(expires_at=now() + timedelta(seconds=1))
        )
    answers = await asyncio.gather(*(http.get("/auth/external/token", headers=headers) for _ in range(8)))
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.json()["access_token"] for r in answers}) == 1
    assert (await server.control())["refreshRequests"] - before == 1
    # the rotated refresh token was never presented twice: the server still refreshes this grant
    async with auth_db.transaction() as s:
        await s.execute(
            update(external_tokens)
            .where(external_tokens.c.user_id == user_id)
            .values(expires_at=now() + timedelta(seconds=1))
        )
    r = await http.get("/auth/external/token", headers=headers)
    assert r.status_code == 200 and r.json()["access_token"] != answers[0].json()["access_token"]


async def test_a_failing_refresh_is_retried_and_a_refused_one_ends_the_session(
    http: httpx.AsyncClient,
    stack: Stack,
    server: OidcProvider,
    external_mode: dict[str, Any],
    auth_db: Database,
) -> None:
    _, headers = await external_user(http, server)
    user_id = (await http.get("/auth/me", headers=headers)).json()["id"]
    await server.control(failTokenRequests=1000)  # the token endpoint answers 503
    for _ in range(150):
        row = await token_row(auth_db, user_id)
        if row.failures:
            break
        await asyncio.sleep(0.1)
    assert row.failures >= 1 and "503" in row.last_error
    assert (await http.get("/auth/me", headers=headers)).status_code == 200  # the session lives on
    await server.control(failTokenRequests=0)
    for _ in range(150):
        row = await token_row(auth_db, user_id)
        if row.failures == 0:
            break
        await asyncio.sleep(0.1)
    assert row.failures == 0 and row.last_error is None
    # the server refuses the refresh token (revoked there): the Atrium session ends
    box = SecretBox(stack.settings("auth").platform_secret, purpose=AUTH_SECRETS_PURPOSE)
    async with auth_db.transaction() as s:
        await s.execute(
            update(external_tokens)
            .where(external_tokens.c.user_id == user_id)
            .values(refresh_enc=box.encrypt("revoked-at-the-server"), expires_at=now() + timedelta(seconds=1))
        )
    for _ in range(150):
        if await token_row(auth_db, user_id) is None:
            break
        await asyncio.sleep(0.1)
    assert await token_row(auth_db, user_id) is None
    r = await http.get("/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "revoked"


async def test_sign_out_clears_the_tokens(
    http: httpx.AsyncClient, server: OidcProvider, external_mode: dict[str, Any], auth_db: Database
) -> None:
    _, headers = await external_user(http, server)
    user_id = (await http.get("/auth/me", headers=headers)).json()["id"]
    assert await token_row(auth_db, user_id) is not None
    assert (await http.post("/auth/logout", headers=headers)).status_code == 200
    assert await token_row(auth_db, user_id) is None


async def test_slow_or_down_server_gives_clear_errors_and_local_admins_still_sign_in(
    http: httpx.AsyncClient, stack: Stack, server: OidcProvider, external_mode: dict[str, Any]
) -> None:
    account = await server.add_account(unique_email("ext"))
    admin_email = await create_admin(stack)
    await server.control(tokenDelayMs=2500)  # slower than the 1 s timeout
    r = await sign_in(http, account["email"], account["password"])
    assert r.status_code == 504, r.text
    message = r.json()["error"]["message"]
    assert "did not answer within 1 s" in message and "Administrators can still sign in" in message
    assert (await sign_in(http, admin_email, PASSWORD)).status_code == 200
    await server.control(tokenDelayMs=0)
    await server.stop()
    try:
        r = await sign_in(http, account["email"], account["password"])
        assert r.status_code == 503 and "cannot be reached" in r.json()["error"]["message"], r.text
        for _ in range(5):  # failures in a row open the circuit: then it is not even called
            r = await sign_in(http, account["email"], account["password"])
            assert r.status_code == 503, r.text
            if r.json()["error"]["details"]["reason"] == "circuit_open":
                break
        assert r.json()["error"]["details"]["reason"] == "circuit_open"
        admin = external_mode["admin"]
        assert (await http.get("/admin/external-auth", headers=admin.headers)).json()["circuit_open"] is True
        assert (await sign_in(http, admin_email, PASSWORD)).status_code == 200
    finally:
        await server.start()
