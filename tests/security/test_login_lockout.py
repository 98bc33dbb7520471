"""Issue 13, item 6: a lockout that a stranger cannot cause.

Failed sign-ins count per account *and* client: the client that keeps guessing is refused for that
account, nobody else is. Across clients they count per account, and past the limit each attempt on the
account waits progressively longer (recorded as `delayed_s` on the audit row), but none is refused: the
owner signing in correctly from elsewhere gets in, and changing the password or the address (which
checks the current password) works while the attack goes on. Over HTTP and straight on the bus.
"""

from __future__ import annotations

import random

import httpx
import pytest
from sqlalchemy import select

from contracts import RateLimited
from contracts.auth import LOGIN, TokenPair
from services.auth.config import DEFAULT_RULES
from services.auth.tables import audit_log, rate_limits
from services.kit.client import call
from services.kit.db import Database
from services.kit.ratelimit import MAX_DELAY_S, Rule, SharedRateLimiter
from tests.conftest import PASSWORD, AppUser, Stack, unique_email

WRONG = "guessing wrongly 1"


def new_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def from_ip(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def test_the_delay_grows_past_the_limit_and_stays_bounded(auth_db: Database) -> None:
    now = [5_000_000_000.0 + random.randint(0, 10**6)]  # a time of this test's own
    limiter = SharedRateLimiter(rate_limits, {"login_account": Rule(3, 300)}, clock=lambda: now[0])
    account = unique_email()
    delays = []
    for _ in range(8):
        delays.append(await limiter.delay_s(auth_db, "login_account", account))
        await limiter.hit(auth_db, "login_account", account)
    assert delays[:3] == [0, 0, 0] and delays[3] > 0
    assert all(b >= a for a, b in zip(delays, delays[1:], strict=False)) and max(delays) == MAX_DELAY_S
    now[0] += 301  # the window slides: no delay once the failures are old
    assert await limiter.delay_s(auth_db, "login_account", account) == 0


async def _failed_logins(http: httpx.AsyncClient, email: str, count: int) -> None:
    for _ in range(count):  # each from another address, as a botnet would
        r = await http.post(
            "/auth/login", json={"email": email, "password": WRONG}, headers=from_ip(new_ip())
        )
        assert r.status_code == 401, r.text  # slowed down, never refused


async def test_guessing_from_many_clients_slows_the_account_but_the_owner_gets_in(
    http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    over = DEFAULT_RULES["login_account"].limit + 2
    await _failed_logins(http, new_user.email, over)
    r = await http.post(
        "/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=from_ip(new_ip())
    )
    assert r.status_code == 200, r.text
    async with auth_db.session() as s:
        delays = [
            (row.details or {}).get("delayed_s", 0)
            for row in (
                await s.execute(
                    select(audit_log.c.details)
                    .where(audit_log.c.action == "login.failed", audit_log.c.target_id == new_user.id)
                    .order_by(audit_log.c.at)
                )
            ).all()
        ]
    # The first failures were answered at once, the later ones waited, each longer than the one before.
    assert len(delays) == over and delays[0] == 0 and 0 < delays[-2] < delays[-1] <= MAX_DELAY_S


async def test_the_owner_changes_password_and_address_while_under_attack(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    guesser = from_ip(new_ip())
    for _ in range(DEFAULT_RULES["login_client"].limit):
        await http.post("/auth/login", json={"email": new_user.email, "password": WRONG}, headers=guesser)
    # …and from many more clients, past the account's limit: the account is being slowed down now.
    more = DEFAULT_RULES["login_account"].limit - DEFAULT_RULES["login_client"].limit + 1
    await _failed_logins(http, new_user.email, more)
    r = await http.post(
        "/auth/email/change",
        headers=new_user.headers,
        json={"password": PASSWORD, "new_email": unique_email("moving")},
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        "/auth/password/change",
        headers=new_user.headers,
        json={"current_password": PASSWORD, "new_password": "another sturdy passphrase 7"},
    )
    assert r.status_code == 200, r.text


async def test_a_stolen_session_cannot_guess_the_current_password_for_long(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    body = {"current_password": WRONG, "new_password": "another sturdy passphrase 7"}
    for _ in range(DEFAULT_RULES["password_session"].limit):
        r = await http.post("/auth/password/change", headers=new_user.headers, json=body)
        assert r.status_code == 401
    r = await http.post(
        "/auth/password/change", headers=new_user.headers, json=body | {"current_password": PASSWORD}
    )
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    # Only that session is held back: the owner signing in afresh is not.
    r = await http.post(
        "/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=from_ip(new_ip())
    )
    assert r.status_code == 200


async def test_on_the_bus_the_guessing_client_is_refused_and_the_owner_is_not(
    stack: Stack, new_user: AppUser
) -> None:
    guesser = {"x-client-ip": new_ip()}
    wrong = {"email": new_user.email, "password": WRONG}
    for _ in range(DEFAULT_RULES["login_client"].limit):
        with pytest.raises(Exception) as failed:
            await call(stack.nc, LOGIN, wrong, headers=guesser)
        assert getattr(failed.value, "code", None) == "unauthenticated"
    with pytest.raises(RateLimited):
        await call(stack.nc, LOGIN, {"email": new_user.email, "password": PASSWORD}, headers=guesser)
    pair = await call(
        stack.nc, LOGIN, {"email": new_user.email, "password": PASSWORD}, headers={"x-client-ip": new_ip()}
    )
    assert isinstance(pair, TokenPair) and str(pair.user.id) == new_user.id
