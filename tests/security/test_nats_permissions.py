"""NATS users on the real server: no anonymous or wrong-password clients, and a process cannot reach
subjects outside its permissions (infra/nats). That services still do their jobs is what the rest
of the suite shows: it runs with every process as its own user."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from contracts.auth import JWKS, USER_REGISTERED
from contracts.documents import DOCS_HEALTH
from infra.nats import accounts
from tests.conftest import NATS_PROBE, Stack


class Client:
    """A connection as one NATS user that records the permission errors the server sends back."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Any = None

    async def connect(self, stack: Stack, user: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            stack.nats_url,
            name=f"{NATS_PROBE}{user}",
            error_cb=on_error,
            max_reconnect_attempts=0,
            **stack.nats_login(user).connect_options(),
        )
        return self

    async def violation(self, subject: str) -> str:
        await self.nc.flush()
        for _ in range(50):
            hit = next(
                (
                    e
                    for e in self.errors
                    if "permissions violation" in e.lower() and subject.lower() in e.lower()
                ),
                None,
            )
            if hit:
                return hit
            await asyncio.sleep(0.05)
        raise AssertionError(f"no permissions violation for {subject}; errors: {self.errors}")


async def as_user(stack: Stack, user: str) -> Client:
    return await Client().connect(stack, user)


async def test_anonymous_clients_are_refused(stack: Stack) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(stack.nats_url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)


async def test_a_wrong_password_is_refused(stack: Stack) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            stack.nats_url,
            user=accounts.GATEWAY,
            password="not-the-password",
            connect_timeout=2,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )


async def test_the_gateway_cannot_publish_auth_events(stack: Stack) -> None:
    seen: list[bytes] = []

    async def record(msg: Any) -> None:
        seen.append(msg.data)

    watcher = await stack.nc.subscribe(USER_REGISTERED.subject, cb=record)
    gw = await as_user(stack, accounts.GATEWAY)
    try:
        await gw.nc.publish(USER_REGISTERED.subject, b'{"forged": true}')
        assert "publish" in (await gw.violation(USER_REGISTERED.subject)).lower()
        await stack.nc.flush()
        await asyncio.sleep(0.2)
        assert seen == [], "a forged auth event reached subscribers"
    finally:
        await watcher.unsubscribe()
        await gw.nc.close()


async def test_the_gateway_cannot_listen_to_auth_requests(stack: Stack) -> None:
    gw = await as_user(stack, accounts.GATEWAY)
    pattern = f"{JWKS.service}.>"
    try:
        await gw.nc.subscribe(pattern)
        assert "subscription" in (await gw.violation(pattern)).lower()
        # It still requests what it is for (the JWKS is public).
        reply = await gw.nc.request(JWKS.subject, b"{}", timeout=5)
        assert b'"ok":true' in reply.data
    finally:
        await gw.nc.close()


@pytest.mark.parametrize(
    ("user", "pattern"),
    [
        ("profile", f"{DOCS_HEALTH.service}.>"),  # another service's requests
        ("profile", f"{accounts.nats_inbox_prefix(accounts.GATEWAY)}.>"),  # another user's replies
    ],
)
async def test_a_service_cannot_listen_to_what_is_not_its_own(stack: Stack, user: str, pattern: str) -> None:
    conn = await as_user(stack, user)
    try:
        await conn.nc.subscribe(pattern)
        assert "subscription" in (await conn.violation(pattern)).lower()
    finally:
        await conn.nc.close()


async def test_only_the_operator_deletes_streams(stack: Stack) -> None:
    docs = await as_user(stack, "docs")
    try:
        with pytest.raises((NatsTimeout, NoRespondersError)):
            await docs.nc.jetstream(timeout=1).delete_stream(USER_REGISTERED.stream)
        await docs.violation(f"$JS.API.STREAM.DELETE.{USER_REGISTERED.stream}")
        assert (
            await stack.nc.jetstream().stream_info(USER_REGISTERED.stream)
        ).config.name == USER_REGISTERED.stream
    finally:
        await docs.nc.close()
