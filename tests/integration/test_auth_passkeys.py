"""Passkeys over the real stack, with a software authenticator that makes genuine WebAuthn data: several
per account (named, renamed, removed with the password), a sign-in with a passkey alone (user verification
required, ceremony single use, a cloned authenticator refused) and a passkey as the second factor."""

from __future__ import annotations

import os
from typing import Any

import httpx

from tests.conftest import PASSWORD, AppUser, Stack, register_and_login
from tests.integration.passkey_authenticator import SoftAuthenticator
from tests.integration.test_auth_support import browser_session, mails_to


def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(origin=os.environ["ATRIUM_PUBLIC_URL"])


async def add_passkey(
    http: httpx.AsyncClient, user: AppUser, soft: SoftAuthenticator, name: str
) -> dict[str, Any]:
    r = await http.post("/auth/passkeys/options", headers=user.headers)
    assert r.status_code == 200, r.text
    ceremony = r.json()
    credential = soft.create(ceremony["options"])
    r = await http.post(
        "/auth/passkeys",
        json={"ceremony_id": ceremony["ceremony_id"], "name": name, "credential": credential},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def passkey_sign_in(http: httpx.AsyncClient, soft: SoftAuthenticator, **kwargs: Any) -> httpx.Response:
    r = await http.post("/auth/login/passkey/options", json={})
    assert r.status_code == 200, r.text
    ceremony = r.json()
    credential = soft.get(ceremony["options"], **kwargs)
    r = await http.post(
        "/auth/login/passkey", json={"ceremony_id": ceremony["ceremony_id"], "credential": credential}
    )
    if r.status_code == 200:
        browser_session(r)  # cookies only, no token in the body
    return r


async def test_register_several_name_and_rename_them(http: httpx.AsyncClient, new_user: AppUser) -> None:
    soft = authenticator()
    r = await http.post("/auth/passkeys/options", headers=new_user.headers)
    options = r.json()["options"]
    host = os.environ["ATRIUM_PUBLIC_URL"].split("://")[1].split(":")[0]
    assert options["rp"]["id"] == host and options["authenticatorSelection"]["residentKey"] == "required"
    first = await add_passkey(http, new_user, soft, "Laptop")
    second = await add_passkey(http, new_user, soft, "Phone")
    r = await http.post("/auth/passkeys/options", headers=new_user.headers)
    assert len(r.json()["options"]["excludeCredentials"]) == 2  # the browser will not register one twice
    listed = (await http.get("/auth/passkeys", headers=new_user.headers)).json()["items"]
    assert [p["name"] for p in listed] == ["Laptop", "Phone"]
    r = await http.patch(
        f"/auth/passkeys/{second['id']}", json={"name": "Work phone"}, headers=new_user.headers
    )
    assert r.status_code == 200 and r.json()["name"] == "Work phone"
    other = await register_and_login(http)
    r = await http.patch(f"/auth/passkeys/{first['id']}", json={"name": "Mine now"}, headers=other.headers)
    assert r.status_code == 404
    status = (await http.get("/auth/second-factor", headers=new_user.headers)).json()
    assert status["passkeys"] == 2


async def test_a_registration_for_another_origin_or_a_spent_ceremony_is_refused(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    phishing = SoftAuthenticator(origin="https://atrium.example.evil")
    ceremony = (await http.post("/auth/passkeys/options", headers=new_user.headers)).json()
    body = {
        "ceremony_id": ceremony["ceremony_id"],
        "name": "x",
        "credential": phishing.create(ceremony["options"]),
    }
    r = await http.post("/auth/passkeys", json=body, headers=new_user.headers)
    assert r.status_code == 422 and "origin" in r.json()["error"]["message"].lower()
    body["credential"] = authenticator().create(ceremony["options"])
    r = await http.post("/auth/passkeys", json=body, headers=new_user.headers)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "ceremony_expired"


async def test_sign_in_with_a_passkey_alone(http: httpx.AsyncClient, new_user: AppUser) -> None:
    soft = authenticator()
    await add_passkey(http, new_user, soft, "Laptop")
    r = await http.post("/auth/login/passkey/options", json={"remember_me": True})
    ceremony = r.json()
    assert ceremony["options"]["userVerification"] == "required"
    assert not ceremony["options"].get("allowCredentials")  # discoverable: no account named beforehand
    assertion = soft.get(ceremony["options"])
    body = {"ceremony_id": ceremony["ceremony_id"], "credential": assertion}
    r = await http.post("/auth/login/passkey", json=body)
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["user"]["id"] == new_user.id and session["refresh_expires_in"] > 7 * 24 * 3600
    me = await http.get("/auth/me", headers=browser_session(r))
    assert me.status_code == 200 and me.json()["id"] == new_user.id
    assert (await http.post("/auth/login/passkey", json=body)).status_code == 401  # the ceremony is spent
    listed = (await http.get("/auth/passkeys", headers=new_user.headers)).json()["items"]
    assert listed[0]["last_used_at"] is not None


async def test_a_cloned_authenticator_or_one_without_user_verification_is_refused(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    soft = authenticator()
    await add_passkey(http, new_user, soft, "Key")
    assert (await passkey_sign_in(http, soft)).status_code == 200
    soft.credentials[0].sign_count -= 1  # a copy of the key whose counter lags behind
    r = await passkey_sign_in(http, soft)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "passkey_not_accepted"
    soft.credentials[0].sign_count += 5
    soft.user_verified = False
    assert (await passkey_sign_in(http, soft)).status_code == 401
    soft.user_verified = True
    assert (await passkey_sign_in(http, soft)).status_code == 200
    stranger = authenticator()
    stranger.create({"rp": {"id": soft.credentials[0].rp_id}, "user": {"id": "AAAA"}, "challenge": "x"})
    assert (await passkey_sign_in(http, stranger)).status_code == 401  # a credential nobody registered


async def test_a_passkey_as_the_second_factor(http: httpx.AsyncClient, new_user: AppUser) -> None:
    soft = authenticator()
    await add_passkey(http, new_user, soft, "Laptop")
    other = await register_and_login(http)
    other_soft = authenticator()
    await add_passkey(http, other, other_soft, "Theirs")
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    assert r.status_code == 401
    details = r.json()["error"]["details"]
    assert details["methods"] == ["passkey"]
    options = details["passkey_options"]
    assert len(options["allowCredentials"]) == 1
    # someone else's passkey does not finish this sign-in
    theirs = other_soft.get({}, challenge=options["challenge"])
    step = {"step_token": details["step_token"], "method": "passkey", "credential": theirs}
    assert (await http.post("/auth/login/second-step", json=step)).status_code == 401
    step["credential"] = soft.get(options)
    r = await http.post("/auth/login/second-step", json=step)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == new_user.id
    me = await http.get("/auth/me", headers=browser_session(r))
    assert me.status_code == 200 and me.json()["id"] == new_user.id


async def test_removing_a_passkey_needs_the_password_and_is_mailed(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    soft = authenticator()
    key = await add_passkey(http, new_user, soft, "Old laptop")
    r = await http.post(
        f"/auth/passkeys/{key['id']}/remove", json={"password": "wrong wrong wrong"}, headers=new_user.headers
    )
    assert r.status_code == 401
    other = await register_and_login(http)
    r = await http.post(
        f"/auth/passkeys/{key['id']}/remove", json={"password": PASSWORD}, headers=other.headers
    )
    assert r.status_code == 404
    r = await http.post(
        f"/auth/passkeys/{key['id']}/remove", json={"password": PASSWORD}, headers=new_user.headers
    )
    assert r.status_code == 200
    mails = [m for m in mails_to(stack, new_user.email) if "turned off" in str(m["Subject"])]
    assert len(mails) == 1 and "Old laptop" in mails[0].get_content()
    assert (await http.get("/auth/passkeys", headers=new_user.headers)).json()["items"] == []
    assert (await passkey_sign_in(http, soft)).status_code == 401
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    assert r.status_code == 200
