"""Personal access tokens over the real stack: shown once and stored hashed, usable as a bearer token by
every service (exchanged at the gateway for a scoped access JWT), scopes and apps enforced in each service,
last use recorded, admin-scoped use audited, refused everywhere once revoked, expired or deactivated, and
usable by `atrium remote` against a stack over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from contracts import Unauthenticated
from contracts.docs_api import CATEGORY_LIST
from contracts.identity import PAT_EXCHANGE
from contracts.profile import PROFILE_GET
from services.auth.handlers.common import now
from services.auth.tables import access_tokens, audit_log
from services.kit.client import call
from services.kit.db import Database
from tests.conftest import PASSWORD, ROOT, AppUser, Stack

pytestmark = pytest.mark.usefixtures("stack")


async def create(http: httpx.AsyncClient, user: AppUser, **body: Any) -> dict[str, Any]:
    r = await http.post(
        "/auth/tokens", json={"name": "script", "scopes": ["read"], **body}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_is_shown_once_stored_hashed_and_works_in_every_service(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    made = await create(http, new_user, name="backup script", expires_in_days=30)
    token, info = made["token"], made["info"]
    assert token.startswith("atp_") and len(token) > 40 and token.startswith(info["prefix"])
    assert info["scopes"] == ["read"] and info["apps"] is None and info["last_used_at"] is None
    listed = (await http.get("/auth/tokens", headers=new_user.headers)).json()["items"]
    assert [t["id"] for t in listed] == [info["id"]] and token not in str(listed)
    async with auth_db.session() as s:
        stored = (await s.execute(select(access_tokens).where(access_tokens.c.user_id == new_user.id))).one()
    assert stored.token_hash != token and token not in str(tuple(stored))
    http.cookies.clear()
    me = await http.get("/auth/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["id"] == new_user.id  # auth
    assert (await http.get("/categories", headers=bearer(token))).status_code == 200  # documents
    assert (await http.get("/profile", headers=bearer(token))).status_code == 200  # profile
    used = (await http.get("/auth/tokens", headers=new_user.headers)).json()["items"][0]
    assert used["last_used_at"] is not None and used["last_used_ip"] == "127.0.0.1"


async def test_scopes_are_enforced_by_the_services(http: httpx.AsyncClient, new_user: AppUser) -> None:
    read = (await create(http, new_user, scopes=["read"]))["token"]
    write = (await create(http, new_user, scopes=["write"]))["token"]
    http.cookies.clear()
    r = await http.post("/categories", json={"name": "Taxes"}, headers=bearer(read))
    assert r.status_code == 403 and "'write' scope" in r.json()["error"]["message"]
    r = await http.post("/categories", json={"name": "Taxes"}, headers=bearer(write))
    assert r.status_code == 201, r.text
    assert (await http.get("/categories", headers=bearer(write))).status_code == 200  # write covers read
    # no token manages the account's sign-in, whatever its scopes
    for method, path, body in (
        ("POST", "/auth/password/change", {"current_password": PASSWORD, "new_password": "x" * 20}),
        ("POST", "/auth/tokens", {"name": "child", "scopes": ["read"]}),
        ("GET", "/auth/sessions", None),
        ("POST", "/auth/totp/start", None),
    ):
        r = await http.request(method, path, json=body, headers=bearer(write))
        assert r.status_code == 403, (path, r.text)
    # signing out with a token does not end (or break) it
    await http.post("/auth/logout", headers=bearer(write))
    assert (await http.get("/auth/me", headers=bearer(write))).status_code == 200


async def test_an_app_limited_token_reads_the_platform_and_reaches_only_its_apps(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    r = await http.post(
        "/auth/tokens", json={"name": "x", "scopes": ["read"], "apps": ["mail"]}, headers=new_user.headers
    )
    assert r.status_code == 422
    docs_only = (await create(http, new_user, scopes=["read", "write"], apps=["documents"]))["token"]
    http.cookies.clear()
    assert (
        await http.post("/categories", json={"name": "Bills"}, headers=bearer(docs_only))
    ).status_code == 201
    assert (await http.get("/profile", headers=bearer(docs_only))).status_code == 200  # platform, read
    r = await http.patch("/profile", json={"job_title": "Scripted"}, headers=bearer(docs_only))
    assert r.status_code == 403  # platform, write


async def test_expiry_is_bounded_and_an_expired_token_is_refused(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    r = await http.post(
        "/auth/tokens",
        json={"name": "x", "scopes": ["read"], "expires_in_days": 366},
        headers=new_user.headers,
    )
    assert r.status_code == 422
    made = await create(http, new_user, expires_in_days=365)
    async with auth_db.transaction() as s:
        await s.execute(
            update(access_tokens)
            .where(access_tokens.c.id == made["info"]["id"])
            .values(expires_at=now() - timedelta(seconds=1))
        )
    http.cookies.clear()
    r = await http.get("/auth/me", headers=bearer(made["token"]))
    assert r.status_code == 401 and r.json()["error"]["details"] == {"reason": "expired"}
    assert (await http.get("/auth/me", headers=bearer("atp_" + "x" * 43))).status_code == 401


async def test_revocation_reaches_every_service_at_once(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    made = await create(http, new_user)
    token = made["token"]
    http.cookies.clear()
    assert (await http.get("/categories", headers=bearer(token))).status_code == 200  # cached at the gateway
    # an access token minted for it before the revocation, used straight on the bus
    minted = (await call(stack.nc, PAT_EXCHANGE, {"token": token})).access_token
    assert (await call(stack.nc, CATEGORY_LIST, {}, token=minted)).items == []
    r = await http.delete(f"/auth/tokens/{made['info']['id']}", headers=new_user.headers)
    assert r.status_code == 200
    http.cookies.clear()
    for path in ("/categories", "/auth/me", "/profile"):
        assert (await http.get(path, headers=bearer(token))).status_code == 401, path
    for desc in (CATEGORY_LIST, PROFILE_GET):
        with pytest.raises(Unauthenticated):
            await call(stack.nc, desc, {}, token=minted)
    assert (
        await http.delete(f"/auth/tokens/{made['info']['id']}", headers=new_user.headers)
    ).status_code == 404
    listed = (await http.get("/auth/tokens", headers=new_user.headers)).json()["items"]
    assert listed[0]["revoked_at"] is not None


async def test_a_deactivated_owner_s_token_is_refused_and_cut_off_tokens_are_exchanged_again(
    http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    token = (await create(http, new_user))["token"]
    http.cookies.clear()
    assert (await http.get("/categories", headers=bearer(token))).status_code == 200
    # signing out everywhere cuts off the access tokens minted so far; the personal token lives on
    await asyncio.sleep(1.1)  # into the next second, so the cut-off refuses the cached access token
    assert (await http.post("/auth/logout-all", headers=new_user.headers)).status_code == 200
    http.cookies.clear()
    assert (await http.get("/categories", headers=bearer(token))).status_code == 200
    r = await http.patch(f"/admin/users/{new_user.id}", json={"is_active": False}, headers=new_admin.headers)
    assert r.status_code == 200
    http.cookies.clear()
    for path in ("/categories", "/auth/me"):
        r = await http.get(path, headers=bearer(token))
        assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "inactive", r.text


async def test_admin_scope_needs_an_admin_and_every_use_is_audited(
    http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser, auth_db: Database
) -> None:
    r = await http.post("/auth/tokens", json={"name": "x", "scopes": ["admin"]}, headers=new_user.headers)
    assert r.status_code == 422
    made = await create(http, new_admin, name="ops", scopes=["admin"])
    http.cookies.clear()
    for _ in range(2):
        assert (await http.get("/admin/users", headers=bearer(made["token"]))).status_code == 200
    assert (await http.get("/categories", headers=bearer(made["token"]))).status_code == 403  # no read scope
    async with auth_db.session() as s:
        uses = (
            await s.execute(
                select(audit_log).where(
                    audit_log.c.action == "pat.used",
                    audit_log.c.details["token_id"].astext == made["info"]["id"],
                )
            )
        ).all()
    purposes = [u.details["purpose"] for u in uses]
    assert purposes.count("GET /api/v1/admin/users") == 2 and "GET /api/v1/categories" in purposes


async def atrium(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_cli_uses_a_token_against_a_stack_over_http(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    made = await create(http, new_user)
    env = {**os.environ, "ATRIUM_URL": stack.base_url, "ATRIUM_TOKEN": made["token"]}
    code, out, err = await atrium("remote", "me", env=env)
    assert code == 0, err
    assert f'"email": "{new_user.email}"' in out
    code, out, err = await atrium("remote", "request", "GET", "/categories", "--token", "atp_nope", env=env)
    assert code == 1 and "401 unauthenticated" in err
