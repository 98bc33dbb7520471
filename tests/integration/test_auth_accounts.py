"""Accounts over real NATS, Postgres and HTTP: password policy, change password/email, verification, reset."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, update

from contracts.auth import USER_CHANGED, UserChanged
from contracts.streams import AUTH_STREAM
from services.auth.policy import PasswordPolicy
from services.auth.tables import action_tokens, audit_log, users
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login, unique_email
from tests.integration.test_auth_support import last_link_token, mails_to

NEW_PASSWORD = "another sturdy passphrase 7"


async def login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/auth/login", json={"email": email, "password": password})


async def test_policy_lists_every_failed_rule(http: httpx.AsyncClient) -> None:
    local = "zed" + uuid.uuid4().hex[:5]
    email = f"{local}@example.com"
    r = await http.post("/auth/register", json={"email": email, "password": local})
    assert r.status_code == 422
    messages = [d["message"] for d in r.json()["error"]["details"]]
    assert any("12 characters" in m for m in messages) and any("email" in m for m in messages)
    r = await http.post("/auth/register", json={"email": unique_email(), "password": "password1234"})
    assert r.status_code == 422 and "commonly used" in r.json()["error"]["message"]
    long_ok = "x7" * 40  # 80 characters: ASVS wants at least 64 allowed
    r = await http.post("/auth/register", json={"email": unique_email(), "password": long_ok})
    assert r.status_code == 201


def test_policy_object_composition_rules() -> None:
    strict = PasswordPolicy.from_env({"ATRIUM_PASSWORD_COMPOSITION": "1"})
    failed = strict.failures("just a test phrase here", "someone@example.com")
    assert "include an uppercase letter" in failed
    assert any("special character" in f for f in failed) and any("'test'" in f for f in failed)
    assert strict.failures("Sturdy-Phrase for 2026", "someone@example.com") == []
    assert PasswordPolicy().failures("just a test phrase here", "x@example.com") == []
    assert PasswordPolicy(min_length=30).failures("a sturdy passphrase 42")[0].startswith("use at least 30")


async def test_register_refuses_mass_assignment(http: httpx.AsyncClient, auth_db: Database) -> None:
    email = unique_email()
    for extra in (
        {"role": "admin"},
        {"is_active": False},
        {"id": "00000000-0000-0000-0000-000000000001"},
        {"email_verified": True},
    ):
        r = await http.post("/auth/register", json={"email": email, "password": PASSWORD, **extra})
        assert r.status_code == 422, extra
    async with auth_db.session() as s:
        assert (await s.execute(select(users).where(users.c.email == email))).one_or_none() is None


async def test_registration_mails_a_verification_link(
    http: httpx.AsyncClient, stack: Stack, auth_db: Database, unconfirmed_signin: None
) -> None:
    user = await register_and_login(http, confirm=False)
    assert (await http.get("/auth/me", headers=user.headers)).json()["email_verified"] is False
    token = last_link_token(stack, user.email, "confirm")
    r = await http.post("/auth/email/verify", json={"token": token})
    assert r.status_code == 200 and r.json()["email_verified"] is True
    # single use
    r = await http.post("/auth/email/verify", json={"token": token})
    assert r.status_code == 422
    async with auth_db.session() as s:
        stored = list(
            (
                await s.execute(select(action_tokens.c.token_hash).where(action_tokens.c.user_id == user.id))
            ).scalars()
        )
    assert stored and token not in stored  # only the hash is kept


async def test_resend_verification_replaces_the_old_link(
    http: httpx.AsyncClient, stack: Stack, unconfirmed_signin: None
) -> None:
    user = await register_and_login(http, confirm=False)
    first = last_link_token(stack, user.email, "confirm")
    r = await http.post("/auth/email/verify/resend", headers=user.headers)
    assert r.status_code == 200
    second = last_link_token(stack, user.email, "confirm")
    assert second != first
    assert (await http.post("/auth/email/verify", json={"token": first})).status_code == 422
    assert (await http.post("/auth/email/verify", json={"token": second})).json()["email_verified"] is True
    r = await http.post("/auth/email/verify/resend", headers=user.headers)
    assert r.status_code == 200 and "already" in r.json()["message"]


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = (await login(http, new_user.email, PASSWORD)).json()
    r = await http.post(
        "/auth/password/change",
        headers=new_user.headers,
        json={"current_password": "not my password at all", "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 401
    assert (await login(http, new_user.email, PASSWORD)).status_code == 200  # unchanged
    r = await http.post(
        "/auth/password/change",
        headers=new_user.headers,
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert r.status_code == 422
    r = await http.post(
        "/auth/password/change",
        headers=new_user.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 200  # this session lives
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 401
    assert (await login(http, new_user.email, PASSWORD)).status_code == 401
    assert (await login(http, new_user.email, NEW_PASSWORD)).status_code == 200


async def test_forgot_password_answers_the_same_and_reset_ends_every_session(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser, auth_db: Database
) -> None:
    unknown = unique_email()
    a = await http.post("/auth/password/forgot", json={"email": new_user.email})
    b = await http.post("/auth/password/forgot", json={"email": unknown})
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    assert mails_to(stack, unknown) == []
    token = last_link_token(stack, new_user.email, "reset")
    r = await http.post("/auth/password/reset", json={"token": token, "new_password": "password1234"})
    assert r.status_code == 422  # policy checked, token not spent
    r = await http.post("/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 401
    r = await http.post("/auth/refresh", json={"refresh_token": new_user.refresh_token})
    assert r.status_code == 401
    assert (await login(http, new_user.email, NEW_PASSWORD)).status_code == 200
    # single use
    r = await http.post(
        "/auth/password/reset", json={"token": token, "new_password": "yet another passphrase 9"}
    )
    assert r.status_code == 422
    async with auth_db.session() as s:
        actions = set(
            (
                await s.execute(select(audit_log.c.action).where(audit_log.c.target_id == new_user.id))
            ).scalars()
        )
    assert {"password.reset_requested", "password.reset", "session.ended"} <= actions


async def test_expired_reset_token_is_refused(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser, auth_db: Database
) -> None:
    await http.post("/auth/password/forgot", json={"email": new_user.email})
    token = last_link_token(stack, new_user.email, "reset")
    async with auth_db.transaction() as s:
        await s.execute(
            update(action_tokens)
            .where(action_tokens.c.user_id == new_user.id)
            .values(expires_at=action_tokens.c.created_at)
        )
    r = await http.post("/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 422
    assert (await login(http, new_user.email, PASSWORD)).status_code == 200


async def test_reset_token_is_not_an_access_token(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    await http.post("/auth/password/forgot", json={"email": new_user.email})
    token = last_link_token(stack, new_user.email, "reset")
    http.cookies.clear()
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {new_user.refresh_token}"})
    assert r.status_code == 401


async def test_change_email_needs_password_and_reverification(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    new_email = unique_email("moved")
    r = await http.post(
        "/auth/email/change",
        headers=new_user.headers,
        json={"password": "not my password at all", "new_email": new_email},
    )
    assert r.status_code == 401
    assert mails_to(stack, new_email) == []
    r = await http.post(
        "/auth/email/change",
        headers=new_user.headers,
        json={"password": PASSWORD, "new_email": new_email, "email_verified": True},
    )
    assert r.status_code == 422  # mass assignment refused
    r = await http.post(
        "/auth/email/change", headers=new_user.headers, json={"password": PASSWORD, "new_email": new_email}
    )
    assert r.status_code == 200, r.text
    assert (await http.get("/auth/me", headers=new_user.headers)).json()["email"] == new_user.email  # not yet
    token = last_link_token(stack, new_email, "confirm")
    r = await http.post("/auth/email/verify", json={"token": token})
    assert r.status_code == 200 and r.json()["email"] == new_email and r.json()["email_verified"] is True
    assert (await login(http, new_email, PASSWORD)).status_code == 200
    assert (await login(http, new_user.email, PASSWORD)).status_code == 401
    last = await stack.nc.jetstream().get_last_msg(AUTH_STREAM.name, USER_CHANGED.subject)
    assert UserChanged.model_validate_json(last.data).email == new_email


async def test_change_email_to_a_taken_address_changes_nothing(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    # Issue 13, item 7: the same answer as for a free address (tests/security/test_enumeration.py), no link.
    other = await register_and_login(http)
    r = await http.post(
        "/auth/email/change", headers=new_user.headers, json={"password": PASSWORD, "new_email": other.email}
    )
    assert r.status_code == 200
    assert "already have" in str(mails_to(stack, other.email)[-1]["Subject"])
    assert (await http.get("/auth/me", headers=new_user.headers)).json()["email"] == new_user.email


async def test_deactivated_login_looks_like_a_wrong_password(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    async with auth_db.transaction() as s:
        await s.execute(update(users).where(users.c.id == new_user.id).values(is_active=False))
    a = await login(http, new_user.email, PASSWORD)
    b = await login(http, new_user.email, "not the password at all")
    c = await login(http, unique_email(), PASSWORD)
    assert a.status_code == b.status_code == c.status_code == 401
    assert a.json()["error"]["message"] == b.json()["error"]["message"] == c.json()["error"]["message"]
