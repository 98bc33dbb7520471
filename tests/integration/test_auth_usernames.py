"""Usernames (sign in with email or username) and the mails that tell an owner about changes to their
account: password changed, address changed (to the old address), a sign-in from a new device."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import PASSWORD, Stack, confirm_address, register_and_login, unique_email
from tests.integration.test_auth_support import last_link_token, mails_to

NEW_PASSWORD = "another sturdy passphrase 7"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605 Version/18.0 Safari/604.1"
)


def unique_username(prefix: str = "user") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


async def login(
    http: httpx.AsyncClient, name: str, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    return await http.post("/auth/login", json={"email": name, "password": password}, headers=headers)


def subjects(stack: Stack, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mails_to(stack, address)]


async def test_sign_in_with_username_in_any_case_or_with_the_email(http: httpx.AsyncClient) -> None:
    email, name = unique_email(), unique_username("Ada")
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD, "username": name})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == name
    await confirm_address(http, email)
    for typed in (name, name.upper(), name.lower(), email):
        r = await login(http, typed)
        assert r.status_code == 200, (typed, r.text)
        assert r.json()["user"]["username"] == name
    wrong = await login(http, name, "not the password at all")
    unknown = await login(http, unique_username("nobody"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_usernames_are_unique_regardless_of_case_and_validated(http: httpx.AsyncClient) -> None:
    name = unique_username("Grace")
    first = {"email": unique_email(), "password": PASSWORD, "username": name}
    assert (await http.post("/auth/register", json=first)).status_code == 201
    again = {"email": unique_email(), "password": PASSWORD, "username": name.swapcase()}
    r = await http.post("/auth/register", json=again)
    assert r.status_code == 409 and r.json()["error"]["details"] == [{"field": "username"}]
    for bad in ("ab", "x" * 51, "has space", "at@sign", "semi;colon", "sla/sh"):
        r = await http.post("/auth/register", json={**again, "username": bad})
        assert r.status_code == 422, bad
        assert any(d["field"] == "username" for d in r.json()["error"]["details"]), r.text
    # letters of any script, digits and ._- are fine
    ok = {"email": unique_email(), "password": PASSWORD, "username": f"Ада_{uuid.uuid4().hex[:6]}-1.x"}
    assert (await http.post("/auth/register", json=ok)).status_code == 201


async def test_set_change_and_remove_the_username(http: httpx.AsyncClient) -> None:
    user = await register_and_login(http)
    other = await register_and_login(http)
    name, taken = unique_username("lin"), unique_username("taken")
    r = await http.put("/auth/username", json={"username": taken}, headers=other.headers)
    assert r.status_code == 200 and r.json()["username"] == taken
    r = await http.put("/auth/username", json={"username": taken.upper()}, headers=user.headers)
    assert r.status_code == 409
    r = await http.put("/auth/username", json={"username": name}, headers=user.headers)
    assert r.status_code == 200 and r.json()["username"] == name
    assert (await http.get("/auth/me", headers=user.headers)).json()["username"] == name
    assert (await login(http, name)).status_code == 200
    r = await http.put("/auth/username", json={"username": None}, headers=user.headers)
    assert r.status_code == 200 and r.json()["username"] is None
    assert (await login(http, name)).status_code == 401
    http.cookies.clear()
    assert (await http.put("/auth/username", json={"username": name})).status_code == 401  # signed in only


async def test_password_change_and_reset_are_mailed(http: httpx.AsyncClient, stack: Stack) -> None:
    user = await register_and_login(http)
    r = await http.post(
        "/auth/password/change",
        headers=user.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert subjects(stack, user.email).count("Your Atrium password was changed") == 1
    assert (await http.post("/auth/password/forgot", json={"email": user.email})).status_code == 200
    token = last_link_token(stack, user.email, "reset")
    r = await http.post("/auth/password/reset", json={"token": token, "new_password": PASSWORD})
    assert r.status_code == 200, r.text
    assert subjects(stack, user.email).count("Your Atrium password was changed") == 2
    body = mails_to(stack, user.email)[-1].get_content()
    assert "forgot-password" in body and token not in body


async def test_a_confirmed_address_change_is_mailed_to_the_old_address(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    user = await register_and_login(http)
    new_email = unique_email("moved")
    r = await http.post(
        "/auth/email/change", headers=user.headers, json={"password": PASSWORD, "new_email": new_email}
    )
    assert r.status_code == 200
    assert "Your Atrium email address was changed" not in subjects(stack, user.email)  # not confirmed yet
    token = last_link_token(stack, new_email, "confirm")
    assert (await http.post("/auth/email/verify", json={"token": token})).status_code == 200
    changed = [
        m for m in mails_to(stack, user.email) if m["Subject"] == "Your Atrium email address was changed"
    ]
    assert len(changed) == 1 and new_email in changed[0].get_content()
    assert "Your Atrium email address was changed" not in subjects(stack, new_email)


async def test_a_sign_in_from_a_new_device_is_mailed_once(http: httpx.AsyncClient, stack: Stack) -> None:
    email = unique_email()
    assert (await http.post("/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    await confirm_address(http, email)
    new_sign_in = "New sign-in to your Atrium account"
    assert (await login(http, email, **{"user-agent": FIREFOX})).status_code == 200
    assert new_sign_in not in subjects(stack, email)  # the first device of an account is no news
    assert (await login(http, email, **{"user-agent": FIREFOX})).status_code == 200
    assert new_sign_in not in subjects(stack, email)
    r = await login(http, email, **{"user-agent": SAFARI_IPHONE, "x-forwarded-for": "203.0.113.9"})
    assert r.status_code == 200
    mails = [m for m in mails_to(stack, email) if m["Subject"] == new_sign_in]
    assert len(mails) == 1
    assert "Safari on iPhone" in mails[0].get_content()
    assert (await login(http, email, **{"user-agent": SAFARI_IPHONE})).status_code == 200
    assert subjects(stack, email).count(new_sign_in) == 1
    # a failed sign-in from yet another device says nothing
    assert (
        await login(http, email, "wrong password entirely", **{"user-agent": "curl/8.0"})
    ).status_code == 401
    assert subjects(stack, email).count(new_sign_in) == 1
