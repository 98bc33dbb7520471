"""`atrium admin create` and `atrium keys generate` against the running test stack."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from infra.cli_auth import admin_app, keys_app
from services.auth.keys import load_keys
from tests.conftest import PASSWORD, Stack, register_and_login, unique_email


@pytest.fixture
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("ATRIUM_DB_URL_AUTH", stack.db_urls["auth"])
    monkeypatch.setenv("NATS_URL", stack.nats_url)
    monkeypatch.delenv("ATRIUM_ADMIN_PASSWORD", raising=False)
    return stack


async def run(app, args: list[str], **kw):  # type: ignore[no-untyped-def]
    # The command runs its own event loop: keep it off the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, app, args, **kw)


async def test_admin_create_from_prompt_then_idempotent(stack_env: Stack, http: httpx.AsyncClient) -> None:
    email = unique_email("cli-admin")
    result = await run(admin_app, ["create", "--email", email], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Created administrator" in result.output and PASSWORD not in result.output
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    again = await run(
        admin_app, ["create", "--email", email], env={"ATRIUM_ADMIN_PASSWORD": "whatever it is 99"}
    )
    assert again.exit_code == 0 and "nothing changed" in again.output


async def test_admin_create_promotes_and_the_running_stack_knows(
    stack_env: Stack, http: httpx.AsyncClient
) -> None:
    user = await register_and_login(http)
    result = await run(admin_app, ["create", "--email", user.email], env={"ATRIUM_ADMIN_PASSWORD": PASSWORD})
    assert result.exit_code == 0 and "now an active administrator" in result.output
    # The old user-role token is refused at once; a refreshed one is an admin's.
    assert (await http.get("/auth/me", headers=user.headers)).status_code == 401
    pair = (await http.post("/auth/refresh", json={"refresh_token": user.refresh_token})).json()
    assert (
        await http.get("/admin/users", headers={"Authorization": f"Bearer {pair['access_token']}"})
    ).status_code == 200


async def test_admin_create_refuses_a_weak_password_and_the_password_option(stack_env: Stack) -> None:
    result = await run(
        admin_app, ["create", "--email", unique_email()], env={"ATRIUM_ADMIN_PASSWORD": "password"}
    )
    assert result.exit_code == 1 and "12 characters" in result.output
    result = await run(admin_app, ["create", "--email", unique_email(), "--password", PASSWORD])
    assert result.exit_code != 0


async def test_keys_generate_adds_a_live_key(stack: Stack, tmp_path: Path) -> None:
    result = await run(keys_app, ["generate", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    keys = load_keys(tmp_path / "keys" / "auth")
    assert len(keys) == 1 and keys[0].private_key.key_size == 4096
    assert (tmp_path / "keys" / "auth" / f"{keys[0].kid}.pem").stat().st_mode & 0o077 == 0


async def test_first_admin_from_environment_at_start(
    stack: Stack, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = unique_email("env-admin")
    monkeypatch.setenv("ATRIUM_ADMIN_EMAIL", email)
    monkeypatch.setenv("ATRIUM_ADMIN_PASSWORD", PASSWORD)
    replica = await stack.start_service("auth")  # a second auth replica starting with the variables set
    try:
        r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    finally:
        await replica.stop()
