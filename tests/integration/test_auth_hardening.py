"""Key rotation, cookies over HTTPS, housekeeping of revocations, and no secrets in any log line."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import update

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.auth.handlers.common import AuthDeps
from services.auth.handlers.housekeeping import housekeeping
from services.auth.keys import generate_key, load_keys
from services.auth.tables import sessions
from services.kit.bus import bus_verifier
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login
from tests.integration.test_auth_support import last_link_token


async def test_a_new_key_signs_and_old_tokens_still_verify(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    key_dir = stack.data_dir / "keys" / "auth"
    old_kid = jwt.get_unverified_header(new_user.access_token)["kid"]
    new = await asyncio.to_thread(generate_key, key_dir)
    remote = bus_verifier(lambda: stack.nc)
    await remote.start()
    try:
        await remote.verify(f"Bearer {new_user.access_token}")  # loads the JWKS of the old key only
        for _ in range(200):  # the auth service notices the new file within a few seconds
            r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
            if jwt.get_unverified_header(r.json()["access_token"])["kid"] == new.kid:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the auth service never signed with the new key")
        fresh = r.json()["access_token"]
        async with httpx.AsyncClient(base_url=stack.base_url) as root:
            kids = {k["kid"] for k in (await root.get("/.well-known/jwks.json")).json()["keys"]}
        assert {old_kid, new.kid} <= kids
        for token in (new_user.access_token, fresh):
            assert (
                await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 200
        await asyncio.sleep(5.1)  # a remote verifier re-fetches the JWKS at most every 5 s on an unknown kid
        assert (await remote.verify(f"Bearer {fresh}")).user_id
        assert (await remote.verify(f"Bearer {new_user.access_token}")).user_id
    finally:
        await remote.stop()
    assert load_keys(key_dir)[-1].kid == new.kid


async def test_https_cookies_are_secure_and_prefixed(stack: Stack, new_user: AppUser) -> None:
    app = create_app(
        GatewaySettings(
            nats_url=stack.nats_url, public_url="https://atrium.example", web_dist=stack.data_dir / "no-web"
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://atrium.example/api/v1"
        ) as browser:
            r = await browser.post("/auth/session", json={"email": new_user.email, "password": PASSWORD})
            assert r.status_code == 200
            cookies = {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}
            access, refresh, csrf = (
                cookies["__Host-atrium_access"],
                cookies["__Secure-atrium_refresh"],
                cookies["__Host-atrium_csrf"],
            )
            for c in (access, refresh, csrf):
                assert "Secure" in c and "samesite=lax" in c.lower()
            assert "Path=/;" in access + ";" and "HttpOnly" in access
            assert "Path=/api/v1/auth" in refresh and "HttpOnly" in refresh and "HttpOnly" not in csrf
            assert (await browser.get("/auth/me")).status_code == 200
            token = browser.cookies["__Host-atrium_csrf"]
            assert (await browser.post("/auth/logout-all")).status_code == 403
            assert (
                await browser.post("/auth/logout-all", headers={"X-CSRF-Token": token})
            ).status_code == 200


async def test_housekeeping_drops_only_revocations_nobody_needs(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database
) -> None:
    user = await register_and_login(http)
    old = (await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})).json()
    await http.post("/auth/logout", headers={"Authorization": f"Bearer {old['access_token']}"})
    await http.post("/auth/logout", headers=user.headers)
    old_sid = jwt.decode(old["access_token"], options={"verify_signature": False})["sid"]
    recent_sid = jwt.decode(user.access_token, options={"verify_signature": False})["sid"]
    async with auth_db.transaction() as s:  # this one ended long enough ago for its tokens to be expired
        await s.execute(
            update(sessions)
            .where(sessions.c.id == old_sid)
            .values(revoked_at=datetime.now(UTC) - timedelta(hours=1))
        )
    deps = stack.services["auth"].deps_as(AuthDeps)
    verifier = deps.state.verifier
    assert {old_sid, recent_sid} <= verifier.revoked_sessions
    assert await housekeeping(deps) >= 1
    assert old_sid not in verifier.revoked_sessions and recent_sid in verifier.revoked_sessions
    r = await http.get("/auth/me", headers=user.headers)
    assert r.status_code == 401


async def test_no_password_or_token_in_any_log_line(
    http: httpx.AsyncClient, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    from services.kit.logging import JsonFormatter

    caplog.set_level(logging.DEBUG)
    user = await register_and_login(http)
    await http.post("/auth/login", json={"email": user.email, "password": "a wrong password for logs"})
    pair = (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).json()
    await http.post("/auth/password/forgot", json={"email": user.email})
    reset = last_link_token(stack, user.email, "reset")
    verify = last_link_token(stack, user.email, "confirm")
    await http.post("/auth/password/reset", json={"token": reset, "new_password": "new sturdy passphrase 77"})
    await http.post("/auth/email/verify", json={"token": verify})
    formatter = JsonFormatter("test")
    # Everything the stack logs (the test's own HTTP client, httpx/httpcore, is not part of it).
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(formatter.format(r) for r in ours)
    assert ours
    for secret in (
        PASSWORD,
        "a wrong password for logs",
        "new sturdy passphrase 77",
        user.access_token,
        user.refresh_token,
        pair["refresh_token"],
        pair["access_token"],
        reset,
        verify,
    ):
        assert secret not in text
