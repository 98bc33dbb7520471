"""A burst of sign-ins beyond what the cores hash in time is told to come back (HTTP 503 with Retry-After,
`unavailable`, reason `busy`) before any password is checked — the same answer for a right or wrong password
and an unknown account — never left to run past the gateway's timeout; once the burst is over the same
sign-in works (services/kit/passwords.py)."""

from __future__ import annotations

import httpx
import pytest

from services.kit import passwords
from tests.conftest import AppUser, Stack, register_and_login


@pytest.fixture(autouse=True)
def needs_auth(stack: Stack) -> None:
    if "auth" not in stack.services:
        pytest.skip("needs the auth service")


async def test_sign_in_when_hashing_is_saturated_is_503_with_retry_after(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user: AppUser = await register_and_login(http)
    # As if the queue of hashes ahead would take 7 s (more than the budget).
    monkeypatch.setattr(passwords.ADMISSION, "expected_wait_s", lambda: 7.0)
    for email, password in (
        (user.email, user.password),
        (user.email, "not the password at all 1"),
        ("nobody-here@example.com", "not the password at all 1"),
    ):
        r = await http.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "7"
        error = r.json()["error"]
        assert error["code"] == "unavailable"
        assert error["details"]["reason"] == "busy"
        assert "try again" in error["message"]
    monkeypatch.undo()
    r = await http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert r.status_code == 200, r.text


async def test_the_gateway_queues_sign_ins_and_answers_503_past_its_budget(
    stack: Stack, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway admits sign-ins to the auth service a few at a time (gateway/bus.py): past its wait budget
    a sign-in — JSON, browser session or OAuth form — is answered 503 + Retry-After without reaching auth."""
    from contracts.auth import LOGIN

    user: AppUser = await register_and_login(http)
    gate = stack.server.config.app.state.bus.admissions[LOGIN.subject]
    monkeypatch.setattr(gate, "expected_wait_s", lambda: 6.0)
    sent = {
        "/auth/login": {"json": {"email": user.email, "password": user.password}},
        "/auth/session": {"json": {"email": user.email, "password": user.password}},
        "/auth/token": {"data": {"username": user.email, "password": user.password}},
    }
    for path, body in sent.items():
        r = await http.post(path, **body)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["Retry-After"] == "6"
        assert r.json()["error"]["details"]["reason"] == "busy"
    monkeypatch.undo()
    r = await http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert r.status_code == 200, r.text
    assert (gate.running, gate.waiting) == (0, 0)
