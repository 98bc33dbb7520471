"""Issue 13, item 7: no account enumeration through registration or an email change.

Registering an address that has an account answers exactly as for a new address: same status, same
body shape, the same work on the way (one password hash, one mail: the "timing class", counted rather
than clocked), and the owner gets a mail saying they already have an account. Signing in right after
cannot tell either, since signing in needs a confirmed address. Moving an account to someone else's
address answers as for a free address and changes nothing. One address gets a bounded number of such
mails, whichever way they are asked for.
"""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from contracts import RateLimited
from contracts.auth import REGISTER, UserPublic
from services.auth import passwords
from services.auth.ratelimit import DEFAULT_RULES
from services.auth.tables import users
from services.kit.client import call
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login, unique_email
from tests.integration.test_auth_support import TOKEN_IN_LINK, mails_to


def from_ip() -> dict[str, str]:
    return {
        "X-Forwarded-For": f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    }


def shape(value: Any) -> Any:
    """The structure of a JSON answer: keys and value types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def error_of(r: httpx.Response) -> tuple[str, str, Any]:
    err = r.json()["error"]
    return err["code"], err["message"], err.get("details")


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash the auth service computes during the test (the real argon2 still runs)."""
    seen: list[str] = []
    real = passwords.hash_password

    async def counting(password: str) -> str:
        seen.append("hash")
        return await real(password)

    monkeypatch.setattr(passwords, "hash_password", counting)
    return seen


async def test_registering_a_known_address_answers_like_a_new_one(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser, auth_db: Database, hashes: list[str]
) -> None:
    async with auth_db.session() as s:
        before = (await s.execute(select(users).where(users.c.id == new_user.id))).one()
    mailed_before = len(mails_to(stack, new_user.email))
    fresh_email = unique_email("fresh")
    fresh = await http.post(
        "/auth/register",
        json={"email": fresh_email, "password": "a different passphrase 7"},
        headers=from_ip(),
    )
    hashes_fresh, mails_fresh = len(hashes), len(mails_to(stack, fresh_email))
    known = await http.post(
        "/auth/register",
        json={"email": new_user.email, "password": "a different passphrase 7"},
        headers=from_ip(),
    )
    hashes_known, mails_known = (
        len(hashes) - hashes_fresh,
        len(mails_to(stack, new_user.email)) - mailed_before,
    )

    assert fresh.status_code == known.status_code == 201
    assert shape(fresh.json()) == shape(known.json())
    assert fresh.headers.keys() - {"x-request-id", "date"} == known.headers.keys() - {"x-request-id", "date"}
    for key in ("role", "is_active", "email_verified", "full_name"):
        assert fresh.json()[key] == known.json()[key]
    assert known.json()["email"] == new_user.email and known.json()["id"] != new_user.id
    # The same work either way: one argon2 hash and one mail.
    assert hashes_fresh == hashes_known == 1 and mails_fresh == mails_known == 1
    # The owner is told, with no link in the mail; the stranger's password went nowhere.
    told = mails_to(stack, new_user.email)[-1]
    assert "already have" in str(told["Subject"]) and not TOKEN_IN_LINK.search(told.get_content())
    async with auth_db.session() as s:
        after = (await s.execute(select(users).where(users.c.id == new_user.id))).one()
        count = (
            await s.execute(
                select(func.count()).select_from(users).where(func.lower(users.c.email) == new_user.email)
            )
        ).scalar_one()
    assert (
        count == 1 and after.password_hash == before.password_hash and after.updated_at == before.updated_at
    )
    # Signing in with what was just registered cannot tell the two apart either.
    a = await http.post("/auth/login", json={"email": fresh_email, "password": "a different passphrase 7"})
    b = await http.post("/auth/login", json={"email": new_user.email, "password": "a different passphrase 7"})
    assert a.status_code == b.status_code == 401 and error_of(a) == error_of(b)


async def test_on_the_bus_a_known_address_gets_a_new_looking_account(stack: Stack, new_user: AppUser) -> None:
    ip = {"x-client-ip": from_ip()["X-Forwarded-For"]}
    answer = await call(stack.nc, REGISTER, {"email": new_user.email, "password": PASSWORD}, headers=ip)
    assert isinstance(answer, UserPublic) and str(answer.id) != new_user.id and not answer.email_verified


async def test_moving_to_someone_elses_address_answers_like_a_free_one(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser, auth_db: Database
) -> None:
    other = await register_and_login(http)
    free = unique_email("free")
    a = await http.post(
        "/auth/email/change", headers=new_user.headers, json={"password": PASSWORD, "new_email": free}
    )
    b = await http.post(
        "/auth/email/change", headers=new_user.headers, json={"password": PASSWORD, "new_email": other.email}
    )
    assert a.status_code == b.status_code == 200
    assert re.sub(re.escape(free), "ADDRESS", a.text) == re.sub(re.escape(other.email), "ADDRESS", b.text)
    # The free address gets a link; the owner of the taken one a notice without one, and nothing changes.
    assert TOKEN_IN_LINK.search(mails_to(stack, free)[-1].get_content())
    told = mails_to(stack, other.email)[-1]
    assert "already have" in str(told["Subject"]) and not TOKEN_IN_LINK.search(told.get_content())
    async with auth_db.session() as s:
        emails = dict(
            (
                await s.execute(
                    select(users.c.id, users.c.email).where(users.c.id.in_([new_user.id, other.id]))
                )
            ).all()
        )
    assert {str(k): v for k, v in emails.items()} == {new_user.id: new_user.email, other.id: other.email}


async def test_one_address_gets_a_bounded_number_of_mails_whichever_way(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    target = await register_and_login(http)  # its registration was the first mail asked for
    sent_before = len(mails_to(stack, target.email))
    limit = DEFAULT_RULES["register_account"].limit
    for i in range(limit - 1):
        if i % 2:
            r = await http.post(
                "/auth/register", json={"email": target.email, "password": PASSWORD}, headers=from_ip()
            )
            assert r.status_code == 201
        else:
            r = await http.post(
                "/auth/email/change",
                headers=new_user.headers,
                json={"password": PASSWORD, "new_email": target.email},
            )
            assert r.status_code == 200
    for attempt in (
        http.post("/auth/register", json={"email": target.email, "password": PASSWORD}, headers=from_ip()),
        http.post(
            "/auth/email/change",
            headers=new_user.headers,
            json={"password": PASSWORD, "new_email": target.email},
        ),
    ):
        r = await attempt
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert len(mails_to(stack, target.email)) - sent_before == limit - 1
    # A fresh address is limited the same way (a 429 does not tell that an account exists).
    ghost = unique_email("ghost")
    for _ in range(limit):
        await http.post("/auth/register", json={"email": ghost, "password": PASSWORD}, headers=from_ip())
    with pytest.raises(RateLimited):
        await call(
            stack.nc, REGISTER, {"email": ghost, "password": PASSWORD}, headers={"x-client-ip": "10.9.9.9"}
        )
