"""Abuse protection: sliding-window limits per client IP and per account, answered with 429 + Retry-After."""

from __future__ import annotations

import random

import httpx
import pytest
from sqlalchemy import select

from contracts import RateLimited
from services.auth.config import DEFAULT_RULES
from services.auth.tables import rate_limits, sessions
from services.auth.tokens import hash_token
from services.kit.db import Database
from services.kit.ratelimit import Rule, SharedRateLimiter, parse_rules
from tests.conftest import PASSWORD, AppUser, register_and_login, unique_email


def client_ip() -> dict[str, str]:
    """The gateway trusts X-Forwarded-For from loopback: each test gets its own client IP."""
    return {
        "X-Forwarded-For": f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    }


def assert_limited(r: httpx.Response, max_wait: int) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= max_wait


async def test_sliding_window(auth_db: Database) -> None:
    now = [5_000_000_000.0 + random.randint(0, 10**6)]  # a time of this test's own
    rule = f"x{random.randint(0, 10**9)}_ip"
    limiter = SharedRateLimiter(
        rate_limits, {rule: Rule(2, 10)}, exempt_ips=frozenset({"127.0.0.1"}), clock=lambda: now[0]
    )
    await limiter.take(auth_db, rule, "1.2.3.4")
    now[0] += 6
    await limiter.take(auth_db, rule, "1.2.3.4")
    with pytest.raises(RateLimited) as err:
        await limiter.take(auth_db, rule, "1.2.3.4")
    assert err.value.details == {"retry_after_s": 4}  # the first attempt leaves the window in 4 s
    await limiter.take(auth_db, rule, "5.6.7.8")  # another key is unaffected
    for _ in range(5):
        await limiter.take(auth_db, rule, "127.0.0.1")  # exempt
    now[0] += 4
    await limiter.take(auth_db, rule, "1.2.3.4")  # a slot freed: the window slides, no fixed reset


def test_rules_are_configurable() -> None:
    assert parse_rules("login_ip=5/30, forgot_account=1/60") == {
        "login_ip": Rule(5, 30),
        "forgot_account": Rule(1, 60),
    }
    assert (
        DEFAULT_RULES["login_account"].window_s <= 300
    )  # a stranger can block an account for minutes at most


async def test_login_is_limited_per_ip(http: httpx.AsyncClient, new_user: AppUser) -> None:
    ip = client_ip()
    limit = DEFAULT_RULES["login_ip"].limit
    for _ in range(limit):
        r = await http.post(
            "/auth/login", json={"email": unique_email(), "password": "wrong password"}, headers=ip
        )
        assert r.status_code == 401
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=ip)
    assert_limited(r, int(DEFAULT_RULES["login_ip"].window_s))
    # Another address is not affected.
    r = await http.post(
        "/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=client_ip()
    )
    assert r.status_code == 200


async def test_failed_logins_refuse_the_guessing_client_not_the_owner(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    # Issue 13, item 6 (more in tests/security/test_login_lockout.py): the client that guesses is refused
    # for this account; the owner signing in from elsewhere is not.
    guesser = client_ip()
    for _ in range(DEFAULT_RULES["login_client"].limit):
        r = await http.post(
            "/auth/login", json={"email": new_user.email, "password": "guessing wrongly 1"}, headers=guesser
        )
        assert r.status_code == 401
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=guesser)
    assert_limited(r, int(DEFAULT_RULES["login_client"].window_s))
    r = await http.post(
        "/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=client_ip()
    )
    assert r.status_code == 200
    # An unknown address is limited exactly the same way (no account enumeration through 429s).
    ghost = unique_email()
    for _ in range(DEFAULT_RULES["login_client"].limit):
        await http.post(
            "/auth/login", json={"email": ghost, "password": "guessing wrongly 1"}, headers=guesser
        )
    assert_limited(
        await http.post("/auth/login", json={"email": ghost, "password": PASSWORD}, headers=guesser),
        int(DEFAULT_RULES["login_client"].window_s),
    )
    # Sessions already open are untouched.
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 200


async def test_register_is_limited_per_ip(http: httpx.AsyncClient) -> None:
    ip = client_ip()
    for _ in range(DEFAULT_RULES["register_ip"].limit):
        r = await http.post(
            "/auth/register", json={"email": unique_email(), "password": PASSWORD}, headers=ip
        )
        assert r.status_code == 201
    email = unique_email()
    assert_limited(
        await http.post("/auth/register", json={"email": email, "password": PASSWORD}, headers=ip),
        int(DEFAULT_RULES["register_ip"].window_s),
    )
    assert (await http.post("/auth/login", json={"email": email, "password": PASSWORD})).status_code == 401


async def test_forgot_password_is_limited_per_account_and_ip(http: httpx.AsyncClient) -> None:
    user = await register_and_login(http)
    for email in (user.email, unique_email()):
        for _ in range(DEFAULT_RULES["forgot_account"].limit):
            assert (
                await http.post("/auth/password/forgot", json={"email": email}, headers=client_ip())
            ).status_code == 200
        assert_limited(
            await http.post("/auth/password/forgot", json={"email": email}, headers=client_ip()),
            int(DEFAULT_RULES["forgot_account"].window_s),
        )
    ip = client_ip()
    for _ in range(DEFAULT_RULES["forgot_ip"].limit):
        await http.post("/auth/password/forgot", json={"email": unique_email()}, headers=ip)
    assert_limited(
        await http.post("/auth/password/forgot", json={"email": unique_email()}, headers=ip),
        int(DEFAULT_RULES["forgot_ip"].window_s),
    )


async def test_token_guessing_is_limited_per_ip(http: httpx.AsyncClient) -> None:
    ip = client_ip()
    for i in range(DEFAULT_RULES["verify_ip"].limit):
        path = "/auth/email/verify" if i % 2 else "/auth/password/reset"
        body = {"token": f"guess-{i}"} | ({} if i % 2 else {"new_password": "a sturdy new passphrase"})
        assert (await http.post(path, json=body, headers=ip)).status_code == 422
    assert_limited(
        await http.post("/auth/email/verify", json={"token": "guess"}, headers=ip),
        int(DEFAULT_RULES["verify_ip"].window_s),
    )


async def test_refresh_is_limited_per_ip(http: httpx.AsyncClient) -> None:
    ip = client_ip()
    for _ in range(DEFAULT_RULES["refresh_ip"].limit):
        assert (
            await http.post("/auth/refresh", json={"refresh_token": "not-a-token"}, headers=ip)
        ).status_code == 401
    assert_limited(
        await http.post("/auth/refresh", json={"refresh_token": "not-a-token"}, headers=ip),
        int(DEFAULT_RULES["refresh_ip"].window_s),
    )


async def test_refresh_is_limited_per_account(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    token = new_user.refresh_token
    for _ in range(DEFAULT_RULES["refresh_account"].limit):
        r = await http.post("/auth/refresh", json={"refresh_token": token}, headers=client_ip())
        assert r.status_code == 200
        token = r.json()["refresh_token"]
    r = await http.post("/auth/refresh", json={"refresh_token": token}, headers=client_ip())
    assert_limited(r, int(DEFAULT_RULES["refresh_account"].window_s))
    # The refused attempt did not rotate: the presented token is still the session's live one.
    async with auth_db.session() as s:
        live = (
            await s.execute(select(sessions.c.refresh_hash).where(sessions.c.user_id == new_user.id))
        ).scalar_one()
    assert live == hash_token(token)
