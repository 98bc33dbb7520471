"""Sessions over real NATS, Postgres and HTTP: rotation, reuse, racing refreshes, logout, cookies, CSRF."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import select, update

from services.auth.tables import audit_log, refresh_history, sessions
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login, unique_email


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/refresh", json={"refresh_token": token})


async def test_access_token_claims_and_jwks(http: httpx.AsyncClient, stack: Stack, new_user: AppUser) -> None:
    header = jwt.get_unverified_header(new_user.access_token)
    c = claims(new_user.access_token)
    assert header["alg"] == "RS256" and header["kid"]
    assert {"kid"} <= header.keys() and {
        "iat",
        "nbf",
        "exp",
        "sub",
        "role",
        "sid",
        "aud",
        "typ",
        "iss",
    } <= c.keys()
    assert (
        c["exp"] - c["iat"] == 900
        and c["typ"] == "access"
        and c["aud"] == "atrium"
        and c["sub"] == new_user.id
    )
    async with httpx.AsyncClient(base_url=stack.base_url) as root:
        r = await root.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = {k["kid"]: k for k in r.json()["keys"]}
    assert header["kid"] in keys and "d" not in keys[header["kid"]]
    key = jwt.algorithms.RSAAlgorithm.from_jwk(keys[header["kid"]])
    assert key.key_size == 4096
    jwt.decode(new_user.access_token, key, algorithms=["RS256"], audience="atrium")


async def test_refresh_rotates_every_time(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    r = await refresh(http, new_user.refresh_token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refresh_token"] != new_user.refresh_token and body["token_type"] == "bearer"
    assert (
        body["expires_in"] == 900
        and claims(body["access_token"])["sid"] == claims(new_user.access_token)["sid"]
    )
    r2 = await refresh(http, body["refresh_token"])
    assert r2.status_code == 200 and r2.json()["refresh_token"] not in (
        body["refresh_token"],
        new_user.refresh_token,
    )
    async with auth_db.session() as s:
        row = (
            await s.execute(select(sessions).where(sessions.c.id == claims(body["access_token"])["sid"]))
        ).one()
    # Only hashes are stored.
    assert len(row.refresh_hash) == 64 and r2.json()["refresh_token"] not in (
        row.refresh_hash,
        row.previous_hash,
    )


async def test_refresh_reuse_revokes_the_whole_session(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    first = (await refresh(http, new_user.refresh_token)).json()
    second = (await refresh(http, first["refresh_token"])).json()
    # The original token, two rotations old, is presented again: an attacker's copy.
    r = await refresh(http, new_user.refresh_token)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "reused"
    # The legitimate holder's newest tokens are dead too: refresh and access.
    assert (await refresh(http, second["refresh_token"])).status_code == 401
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "revoked"
    async with auth_db.session() as s:
        actions = list(
            (
                await s.execute(select(audit_log.c.action).where(audit_log.c.target_id == new_user.id))
            ).scalars()
        )
    assert "refresh.reuse_detected" in actions


async def test_previous_token_after_grace_is_reuse(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    first = (await refresh(http, new_user.refresh_token)).json()
    sid = claims(first["access_token"])["sid"]
    async with auth_db.transaction() as s:  # the rotation happened a minute ago
        await s.execute(
            update(sessions)
            .where(sessions.c.id == sid)
            .values(rotated_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    r = await refresh(http, new_user.refresh_token)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "reused"
    assert (await refresh(http, first["refresh_token"])).status_code == 401


async def test_concurrent_refresh_gives_one_rotation_and_the_same_successor(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    results = await asyncio.gather(*(refresh(http, new_user.refresh_token) for _ in range(4)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    successors = {r.json()["refresh_token"] for r in results}
    assert len(successors) == 1
    sid = claims(results[0].json()["access_token"])["sid"]
    async with auth_db.session() as s:
        rotations = (
            await s.execute(select(refresh_history).where(refresh_history.c.session_id == sid))
        ).all()
    assert len(rotations) == 1
    # The shared successor works and the session is alive.
    nxt = await refresh(http, successors.pop())
    assert nxt.status_code == 200
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {nxt.json()['access_token']}"})
    ).status_code == 200


async def test_unknown_refresh_token(http: httpx.AsyncClient) -> None:
    r = await refresh(http, "x" * 86)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = await http.post("/auth/refresh")
    assert r.status_code == 401
    http.cookies.set("atrium_refresh", "x" * 2000, domain="127.0.0.1", path="/api/v1/auth")
    r = await http.post("/auth/refresh")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"


async def test_absolute_and_idle_lifetimes(http: httpx.AsyncClient, auth_db: Database) -> None:
    email = unique_email()
    await register_and_login(http, email)
    short = (await http.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    long = (
        await http.post("/auth/login", json={"email": email, "password": PASSWORD, "remember_me": True})
    ).json()
    assert short["refresh_expires_in"] <= 24 * 3600 and short["refresh_expires_in"] > 24 * 3600 - 60
    assert long["refresh_expires_in"] > 29 * 24 * 3600
    idle = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    now = datetime.now(UTC)
    async with auth_db.transaction() as s:
        await s.execute(
            update(sessions)
            .where(sessions.c.id == claims(short["access_token"])["sid"])
            .values(expires_at=now - timedelta(seconds=1))
        )
        await s.execute(
            update(sessions)
            .where(sessions.c.id == claims(idle.json()["access_token"])["sid"])
            .values(last_used_at=now - timedelta(hours=3))
        )
    for pair in (short, idle.json()):
        r = await refresh(http, pair["refresh_token"])
        assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "expired"
    assert (await refresh(http, long["refresh_token"])).status_code == 200


async def test_logout_ends_this_session_only_and_replay_fails(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = (await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})).json()
    r = await http.post("/auth/logout", headers=new_user.headers)
    assert r.status_code == 200
    # Replay of the logged-out access and refresh tokens.
    r = await http.get("/auth/me", headers=new_user.headers)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "revoked"
    assert (await refresh(http, new_user.refresh_token)).status_code == 401
    # The other session lives on.
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    ).status_code == 200


async def test_logout_with_refresh_token_only(http: httpx.AsyncClient, new_user: AppUser) -> None:
    http.cookies.clear()  # an API client: no session cookies, so no CSRF token either
    r = await http.post("/auth/logout", json={"refresh_token": new_user.refresh_token})
    assert r.status_code == 200
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 401


async def test_logout_all_and_sessions_listing(http: httpx.AsyncClient, new_user: AppUser) -> None:
    other = (
        await http.post(
            "/auth/login",
            json={"email": new_user.email, "password": PASSWORD},
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
        )
    ).json()
    r = await http.get("/auth/sessions", headers=new_user.headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 2 and sum(i["current"] for i in items) == 1
    current = next(i for i in items if i["current"])
    assert current["id"] == claims(new_user.access_token)["sid"] and current["ip"] == "127.0.0.1"
    assert any(i["device"] == "Firefox on Linux" for i in items)
    assert {"created_at", "last_used_at", "expires_at"} <= current.keys()
    r = await http.post("/auth/logout-all", headers=new_user.headers)
    assert r.status_code == 200
    for token in (new_user.access_token, other["access_token"]):
        assert (await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await refresh(http, other["refresh_token"])).status_code == 401
    # A new login right after (same second) works.
    fresh = (await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})).json()
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    ).status_code == 200


async def test_end_one_session_and_not_someone_elses(http: httpx.AsyncClient, new_user: AppUser) -> None:
    other = (await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})).json()
    stranger = await register_and_login(http)
    other_sid = claims(other["access_token"])["sid"]
    r = await http.delete(f"/auth/sessions/{other_sid}", headers=stranger.headers)
    assert r.status_code == 404
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    ).status_code == 200
    r = await http.delete(f"/auth/sessions/{other_sid}", headers=new_user.headers)
    assert r.status_code == 200
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    ).status_code == 401
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 200


async def test_oauth2_form_login(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await http.post("/auth/token", data={"username": new_user.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"access_token", "refresh_token", "token_type", "expires_in"} <= body.keys()
    r = await http.post("/auth/token", data={"username": new_user.email, "password": "wrong password here"})
    assert r.status_code == 401
    r = await http.post("/auth/token", data={"username": "not an email", "password": "whatever"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"


async def test_cookie_session_with_csrf(stack: Stack, new_user: AppUser) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as browser:
        browser.cookies.set("atrium_csrf", "planted-by-an-attacker", domain="127.0.0.1")
        r = await browser.post("/auth/session", json={"email": new_user.email, "password": PASSWORD})
        assert r.status_code == 200
        set_cookies = r.headers.get_list("set-cookie")
        access = next(c for c in set_cookies if c.startswith("atrium_access="))
        refresh_c = next(c for c in set_cookies if c.startswith("atrium_refresh="))
        assert "httponly" in access.lower() and "samesite=lax" in access.lower() and "Path=/" in access
        assert "httponly" in refresh_c.lower() and "Path=/api/v1/auth" in refresh_c
        csrf = browser.cookies["atrium_csrf"]
        assert csrf != "planted-by-an-attacker"  # sign-in issues a fresh CSRF value
        assert (await browser.get("/auth/me")).status_code == 200  # safe method: no CSRF needed
        # Unsafe cookie-authenticated request without the CSRF header: refused, nothing changes.
        r = await browser.post(
            "/auth/password/change",
            json={"current_password": PASSWORD, "new_password": "another sturdy passphrase 7"},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await browser.post("/auth/logout-all", headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        assert (await browser.get("/auth/me")).status_code == 200
        # Refresh through the cookie rotates it.
        old_refresh = browser.cookies["atrium_refresh"]
        r = await browser.post("/auth/refresh")
        assert r.status_code == 200 and browser.cookies["atrium_refresh"] != old_refresh
        # With the CSRF header the cookie session can act, and logout clears the cookies.
        r = await browser.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        assert "atrium_access" not in browser.cookies
    # the old password still works: the CSRF-less change did nothing
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as api:
        assert (
            await api.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
        ).status_code == 200
