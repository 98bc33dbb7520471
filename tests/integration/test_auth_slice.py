"""The first vertical slice over real NATS, Postgres and HTTP: register, login, me."""

from __future__ import annotations

import httpx

from contracts import AtriumError, Empty
from contracts.auth import ME
from services.kit.client import call
from tests.conftest import PASSWORD, AppUser, Stack, confirm_address, unique_email


async def test_register_login_me(http: httpx.AsyncClient) -> None:
    email = unique_email()
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Ada"})
    assert r.status_code == 201, r.text
    assert r.json()["email"] == email and r.json()["role"] == "user"
    assert "password" not in r.text and "hash" not in r.text
    # Signing in needs the confirmed address, and the refusal reads like any other (issue 13, item 7).
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    wrong = await http.post("/auth/login", json={"email": email, "password": "not the password at all"})
    assert r.status_code == wrong.status_code == 401
    assert r.json()["error"] | {"request_id": ""} == wrong.json()["error"] | {"request_id": ""}
    await confirm_address(http, email)
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] == 900
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["email"] == email and r.json()["full_name"] == "Ada"
    assert r.headers["x-request-id"]


async def test_wrong_password_and_unknown_email_look_the_same(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    a = await http.post("/auth/login", json={"email": new_user.email, "password": "not the password at all"})
    b = await http.post("/auth/login", json={"email": unique_email(), "password": "not the password at all"})
    assert a.status_code == b.status_code == 401
    assert a.json()["error"]["message"] == b.json()["error"]["message"]
    assert a.json()["error"]["code"] == "unauthenticated"


async def test_duplicate_email_looks_like_a_new_account(http: httpx.AsyncClient, new_user: AppUser) -> None:
    # Issue 13, item 7: no 409 that tells a stranger the address has an account (tests/security/test_enumeration.py).
    r = await http.post("/auth/register", json={"email": new_user.email.upper(), "password": PASSWORD})
    assert r.status_code == 201 and r.json()["id"] != new_user.id and r.json()["email_verified"] is False


async def test_invalid_body_is_422_with_fields(http: httpx.AsyncClient) -> None:
    r = await http.post("/auth/register", json={"email": "not-an-email", "password": "x"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid" and any(d["field"] == "email" for d in err["details"])
    r = await http.post("/auth/register", content=b"{broken", headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_short_password_lists_the_rule(http: httpx.AsyncClient) -> None:
    r = await http.post("/auth/register", json={"email": unique_email(), "password": "short"})
    assert r.status_code == 422
    assert "12 characters" in r.json()["error"]["message"]


async def test_me_without_or_with_garbage_token(http: httpx.AsyncClient) -> None:
    assert (await http.get("/auth/me")).status_code == 401
    r = await http.get("/auth/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


async def test_forged_header_straight_on_the_bus_is_refused(stack: Stack) -> None:
    import jwt

    forged = jwt.encode(
        {"sub": "00000000-0000-0000-0000-000000000000", "role": "admin"}, "x", algorithm="HS256"
    )
    try:
        await call(stack.nc, ME, Empty(), token=forged)
    except AtriumError as err:
        assert err.code == "unauthenticated"
    else:
        raise AssertionError("a forged token was accepted")
