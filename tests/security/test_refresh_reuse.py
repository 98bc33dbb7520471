"""Issue 13, item 16: a stolen refresh token is worth at most a few seconds.

Racing tabs that present the same refresh token within the grace window get the same successor; a
rotated token presented after it (default 5 s, `ATRIUM_REFRESH_GRACE_S`) is reuse and ends the whole
session: its newest refresh token and its access tokens die with it, in every service.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import select, update

from services.auth.config import AuthConfig
from services.auth.handlers.common import AuthDeps
from services.auth.tables import sessions
from services.kit.db import Database
from tests.conftest import AppUser, Stack


def sid_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/refresh", json={"refresh_token": token})


def test_the_grace_is_five_seconds_or_less_and_configurable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert AuthConfig.from_env(tmp_path, {}).refresh_grace_s <= 5
    assert AuthConfig.from_env(tmp_path, {"ATRIUM_REFRESH_GRACE_S": "2"}).refresh_grace_s == 2


async def test_the_running_service_uses_the_short_grace(stack: Stack) -> None:
    assert stack.services["auth"].deps_as(AuthDeps).config.refresh_grace_s <= 5


async def test_reuse_just_after_the_grace_ends_the_whole_session(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser, auth_db: Database
) -> None:
    grace = stack.services["auth"].deps_as(AuthDeps).config.refresh_grace_s
    rotated = await refresh(http, new_user.refresh_token)
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    sid = sid_of(newest["access_token"])
    # The legitimate client refreshed; one second past the grace, a thief presents the stolen original.
    async with auth_db.transaction() as s:
        await s.execute(
            update(sessions)
            .where(sessions.c.id == sid)
            .values(rotated_at=datetime.now(UTC) - timedelta(seconds=grace + 1))
        )
    stolen = await refresh(http, new_user.refresh_token)
    assert stolen.status_code == 401 and stolen.json()["error"]["details"]["reason"] == "reused"
    # The whole family is gone: the newest refresh token, and the access token in auth and in docs.
    assert (await refresh(http, newest["refresh_token"])).status_code == 401
    bearer = {"Authorization": f"Bearer {newest['access_token']}"}
    me = await http.get("/auth/me", headers=bearer)
    assert me.status_code == 401 and me.json()["error"]["details"]["reason"] == "revoked"
    if "docs" in stack.services:
        assert (await http.get("/documents", headers=bearer)).status_code == 401
    async with auth_db.session() as s:
        reason = (await s.execute(select(sessions.c.revoked_reason).where(sessions.c.id == sid))).scalar_one()
    assert reason == "refresh_reuse"
