"""TOTP second factor over real NATS, Postgres and HTTP: enrolment with a QR code and a first code,
recovery codes (hashed, single use), the two-step sign-in, replay refusal, turning it off, the policy."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httpx
from sqlalchemy import select

from services.auth import totp
from services.auth.tables import recovery_codes, totp_factors
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login
from tests.integration.test_auth_support import browser_session, mails_to


async def enrol(http: httpx.AsyncClient, user: AppUser) -> tuple[str, list[str]]:
    """Set up TOTP for `user`; returns the secret and the recovery codes."""
    r = await http.post("/auth/totp/start", headers=user.headers)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    step = totp.current_step()
    r = await http.post("/auth/totp/confirm", json={"code": totp.code_at(secret, step)}, headers=user.headers)
    assert r.status_code == 200, r.text
    return secret, r.json()["codes"]


async def password_step(http: httpx.AsyncClient, user: AppUser, **extra: Any) -> dict[str, Any]:
    """Sign in with the password; returns the 401's details (the second step)."""
    r = await http.post("/auth/login", json={"email": user.email, "password": PASSWORD, **extra})
    assert r.status_code == 401, r.text
    details: dict[str, Any] = r.json()["error"]["details"]
    assert details["reason"] == "second_factor_required", details
    return details


async def second(http: httpx.AsyncClient, step_token: str, method: str, code: str) -> httpx.Response:
    r = await http.post(
        "/auth/login/second-step", json={"step_token": step_token, "method": method, "code": code}
    )
    if r.status_code == 200:
        browser_session(r)  # cookies only, no token in the body
    return r


async def test_enrolment_shows_a_qr_code_and_needs_a_right_first_code(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    r = await http.post("/auth/totp/start", headers=new_user.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["qr_svg"].startswith("data:image/svg+xml")
    uri = urllib.parse.urlparse(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert urllib.parse.parse_qs(uri.query)["secret"] == [body["secret"]]
    assert urllib.parse.parse_qs(uri.query)["issuer"] == ["Atrium"]
    secret = body["secret"]
    async with auth_db.session() as s:
        stored = (await s.execute(select(totp_factors).where(totp_factors.c.user_id == new_user.id))).one()
    assert secret not in stored.secret_enc and stored.confirmed_at is None  # encrypted, not yet on
    wrong = totp.code_at(secret, totp.current_step() + 5)
    r = await http.post("/auth/totp/confirm", json={"code": wrong}, headers=new_user.headers)
    assert r.status_code == 422 and r.json()["error"]["details"] == [{"field": "code"}]
    assert (await http.get("/auth/second-factor", headers=new_user.headers)).json()["totp"] is False
    r = await http.post(
        "/auth/totp/confirm",
        json={"code": totp.code_at(secret, totp.current_step())},
        headers=new_user.headers,
    )
    assert r.status_code == 200
    codes = r.json()["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    status = (await http.get("/auth/second-factor", headers=new_user.headers)).json()
    assert status == {"totp": True, "recovery_codes_left": 10, "passkeys": 0, "required": False}
    me = (await http.get("/auth/me", headers=new_user.headers)).json()
    assert me["second_factor"] is True and me["must_enrol_second_factor"] is False
    async with auth_db.session() as s:
        hashes = set(
            (
                await s.execute(
                    select(recovery_codes.c.code_hash).where(recovery_codes.c.user_id == new_user.id)
                )
            ).scalars()
        )
    assert hashes == {totp.hash_recovery_code(c) for c in codes} and not hashes & set(codes)
    r = await http.post("/auth/totp/start", headers=new_user.headers)
    assert r.status_code == 409  # one app at a time


async def test_sign_in_asks_for_the_code_and_refuses_a_replayed_one(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    secret, _ = await enrol(http, new_user)
    details = await password_step(http, new_user, remember_me=True)
    assert details["methods"] == ["totp", "recovery"] and 0 < details["expires_in"] <= 300
    assert "access_token" not in str(details)
    step = totp.current_step()
    # the enrolment spent this step's code already: it is refused, the next step's is accepted
    r = await second(http, details["step_token"], "totp", totp.code_at(secret, step))
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "wrong_second_factor"
    r = await second(http, details["step_token"], "totp", totp.code_at(secret, step + 1))
    assert r.status_code == 200, r.text
    session = r.json()
    assert (
        session["user"]["id"] == new_user.id and session["refresh_expires_in"] > 7 * 24 * 3600
    )  # remember_me kept
    me = await http.get("/auth/me", headers=browser_session(r))
    assert me.status_code == 200 and me.json()["id"] == new_user.id
    # the step token is single use, and the code is spent
    again = await second(http, details["step_token"], "totp", totp.code_at(secret, step + 1))
    assert again.status_code == 401 and again.json()["error"]["details"]["reason"] == "step_expired"
    fresh = await password_step(http, new_user)
    r = await second(http, fresh["step_token"], "totp", totp.code_at(secret, step + 1))
    assert r.status_code == 401


async def test_an_api_client_finishes_the_second_step_with_the_pair_and_no_cookies(
    stack: Stack, new_user: AppUser
) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as api:
        secret, _ = await enrol(api, new_user)
        details = await password_step(api, new_user)
        assert not api.cookies  # POST /auth/login is the API clients' path: no cookies, even on its 401
        body = {
            "step_token": details["step_token"],
            "method": "totp",
            "code": totp.code_at(secret, totp.current_step() + 1),
        }
        r = await api.post("/auth/login/second-step/tokens", json=body)
        assert r.status_code == 200, r.text
        assert not r.headers.get_list("set-cookie") and not api.cookies
        pair = r.json()
        me = await api.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert me.status_code == 200 and me.json()["id"] == new_user.id
        r = await api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200 and r.json()["access_token"]
        # the step token was spent by the API path: the browser path cannot use it again
        r = await api.post("/auth/login/second-step", json=body)
        assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "step_expired"


async def test_the_same_code_racing_on_two_sign_ins_passes_once(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    secret, _ = await enrol(http, new_user)
    a, b = await password_step(http, new_user), await password_step(http, new_user)
    code = totp.code_at(secret, totp.current_step() + 1)
    results = await asyncio.gather(
        second(http, a["step_token"], "totp", code), second(http, b["step_token"], "totp", code)
    )
    assert sorted(r.status_code for r in results) == [200, 401]


async def test_recovery_codes_work_once_each(http: httpx.AsyncClient, new_user: AppUser) -> None:
    _, codes = await enrol(http, new_user)
    details = await password_step(http, new_user)
    r = await second(http, details["step_token"], "recovery", codes[3].upper().replace("-", " "))
    assert r.status_code == 200, r.text  # typed loosely: case, spaces
    details = await password_step(http, new_user)
    assert (await second(http, details["step_token"], "recovery", codes[3])).status_code == 401
    assert (await http.get("/auth/second-factor", headers=new_user.headers)).json()[
        "recovery_codes_left"
    ] == 9


async def test_a_step_token_allows_five_tries(http: httpx.AsyncClient, new_user: AppUser) -> None:
    secret, _ = await enrol(http, new_user)
    details = await password_step(http, new_user)
    for left in (4, 3, 2, 1, 0):
        r = await second(http, details["step_token"], "totp", "000000")
        assert r.status_code == 401 and r.json()["error"]["details"]["attempts_left"] == left
    r = await second(http, details["step_token"], "totp", totp.code_at(secret, totp.current_step() + 1))
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "step_expired"
    assert (await second(http, "not-a-step-token", "totp", "123456")).status_code == 401


async def test_turning_totp_off_needs_password_and_code_and_is_mailed(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    secret, codes = await enrol(http, new_user)
    code = totp.code_at(secret, totp.current_step() + 1)
    r = await http.post(
        "/auth/totp/disable",
        json={"password": "not the password at all", "code": code},
        headers=new_user.headers,
    )
    assert r.status_code == 401 and r.json()["error"]["details"] == {"field": "password"}
    r = await http.post(
        "/auth/totp/disable", json={"password": PASSWORD, "code": "123456"}, headers=new_user.headers
    )
    assert r.status_code == 401 and r.json()["error"]["details"] == {"field": "code"}
    r = await http.post(
        "/auth/totp/disable", json={"password": PASSWORD, "code": codes[0]}, headers=new_user.headers
    )
    assert r.status_code == 200, r.text
    mails = [m for m in mails_to(stack, new_user.email) if "turned off" in str(m["Subject"])]
    assert len(mails) == 1 and "password alone" in mails[0].get_content()
    status = (await http.get("/auth/second-factor", headers=new_user.headers)).json()
    assert status["totp"] is False and status["recovery_codes_left"] == 0
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    assert r.status_code == 200  # one step again


async def test_new_recovery_codes_replace_the_old_ones(http: httpx.AsyncClient, new_user: AppUser) -> None:
    secret, old = await enrol(http, new_user)
    r = await http.post(
        "/auth/recovery-codes", json={"password": PASSWORD, "code": old[0]}, headers=new_user.headers
    )
    assert r.status_code == 200
    new = r.json()["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    details = await password_step(http, new_user)
    assert (await second(http, details["step_token"], "recovery", old[1])).status_code == 401
    assert (await second(http, details["step_token"], "recovery", new[1])).status_code == 200


async def test_the_policy_leads_accounts_without_a_second_factor_to_enrol(
    http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    user = await register_and_login(http)
    assert (
        await http.put("/admin/security-policy", json={"second_factor": "everyone"}, headers=user.headers)
    ).status_code == 403
    try:
        r = await http.put(
            "/admin/security-policy", json={"second_factor": "admins"}, headers=new_admin.headers
        )
        assert r.status_code == 200 and r.json() == {"second_factor": "admins"}
        assert (await http.get("/admin/security-policy", headers=new_admin.headers)).json() == r.json()
        assert (await http.get("/auth/me", headers=new_admin.headers)).json()[
            "must_enrol_second_factor"
        ] is True
        assert (await http.get("/auth/me", headers=user.headers)).json()["must_enrol_second_factor"] is False
        await http.put(
            "/admin/security-policy", json={"second_factor": "everyone"}, headers=new_admin.headers
        )
        r = await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
        assert r.status_code == 200 and r.json()["user"]["must_enrol_second_factor"] is True
        assert (await http.get("/auth/second-factor", headers=user.headers)).json()["required"] is True
        await enrol(http, user)
        assert (await http.get("/auth/me", headers=user.headers)).json()["must_enrol_second_factor"] is False
        bad = await http.put(
            "/admin/security-policy", json={"second_factor": "sometimes"}, headers=new_admin.headers
        )
        assert bad.status_code == 422
    finally:
        await http.put(
            "/admin/security-policy", json={"second_factor": "optional"}, headers=new_admin.headers
        )
