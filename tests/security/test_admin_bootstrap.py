"""Issue 13, item 9: the first administrator cannot be pre-empted.

Whoever registers `admin@corp.com` before the operator runs `atrium admin create` chose that account's
password. Such an account (address never confirmed) is not promoted, by the CLI or by
`ATRIUM_ADMIN_EMAIL`; with `--reset-password` it is taken over: it gets the operator's password and every
session the stranger had ends, in every service.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from contracts import Conflict
from infra.cli_auth import admin_app
from services.auth.admin import ensure_admin
from services.auth.tables import users
from services.kit.db import Database
from tests.conftest import PASSWORD, Stack, register_and_login, unique_email

STRANGERS = "the stranger's own passphrase 1"


async def _preempted(http: httpx.AsyncClient, email: str) -> str:
    r = await http.post("/auth/register", json={"email": email, "password": STRANGERS})
    assert r.status_code == 201
    return str(r.json()["id"])


async def _row(db: Database, email: str):  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return (await s.execute(select(users).where(users.c.email == email))).one()


async def test_an_unconfirmed_account_is_not_promoted(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database
) -> None:
    email = unique_email("admin")
    await _preempted(http, email)
    before = await _row(auth_db, email)
    with pytest.raises(Conflict) as refused:
        await ensure_admin(auth_db, email, PASSWORD, nc=stack.nc)
    assert "--reset-password" in refused.value.message
    after = await _row(auth_db, email)
    assert (after.role, after.password_hash, after.email_verified) == ("user", before.password_hash, False)
    # Neither password signs in: the stranger's address is unconfirmed, and the operator's was never set.
    for password in (STRANGERS, PASSWORD):
        assert (
            await http.post("/auth/login", json={"email": email, "password": password})
        ).status_code == 401


async def test_the_cli_refuses_and_says_what_to_do(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_DB_URL_AUTH", stack.db_urls["auth"])
    monkeypatch.setenv("NATS_URL", stack.nats_url)
    email = unique_email("admin")
    await _preempted(http, email)
    result = await asyncio.to_thread(
        CliRunner().invoke, admin_app, ["create", "--email", email], env={"ATRIUM_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.exit_code == 1 and "--reset-password" in result.output
    assert (await _row(auth_db, email)).role == "user"


async def test_taking_over_resets_the_password_and_ends_the_strangers_sessions(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.auth.handlers.common import AuthDeps

    email = unique_email("admin")
    # A stranger who got in before sign-in needed a confirmed address (or while it was switched off).
    monkeypatch.setattr(
        stack.services["auth"].deps_as(AuthDeps).config, "signin_requires_verified_email", False
    )
    stranger = await register_and_login(http, email, STRANGERS, confirm=False)
    monkeypatch.undo()
    monkeypatch.setenv("ATRIUM_DB_URL_AUTH", stack.db_urls["auth"])
    monkeypatch.setenv("NATS_URL", stack.nats_url)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        admin_app,
        ["create", "--email", email, "--reset-password"],
        env={"ATRIUM_ADMIN_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert "every session it had has ended" in result.output
    row = await _row(auth_db, email)
    assert (row.role, row.email_verified) == ("admin", True)
    # The stranger is out everywhere: access token (auth and another service), refresh token, password.
    assert (await http.get("/auth/me", headers=stranger.headers)).status_code == 401
    if "profile" in stack.services:
        assert (await http.get("/profile", headers=stranger.headers)).status_code == 401
    r = await http.post("/auth/refresh", json={"refresh_token": stranger.refresh_token})
    assert r.status_code == 401
    assert (await http.post("/auth/login", json={"email": email, "password": STRANGERS})).status_code == 401
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin"


async def test_admin_email_at_start_does_not_promote_an_unconfirmed_account(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = unique_email("env-admin")
    await _preempted(http, email)
    monkeypatch.setenv("ATRIUM_ADMIN_EMAIL", email)
    monkeypatch.setenv("ATRIUM_ADMIN_PASSWORD", PASSWORD)
    replica = await stack.start_service("auth")  # starts and serves; the refusal is logged
    try:
        assert (await _row(auth_db, email)).role == "user"
    finally:
        await replica.stop()
