"""Issue 13, item 13: a server-sent event stream lives only as long as its session, and a user holds a
bounded number of them.

A gateway of its own (real uvicorn, real bus) with a short heartbeat: each heartbeat asks for the grant
again with the stream's token, so logout, logout everywhere, deactivation and expiry end the stream with
`event: end`; the stream the cap refuses is a 429 and the open ones carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from infra.embedded import free_port
from services.auth.handlers.common import AuthDeps
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login

HEARTBEAT_S = 0.3
CAP = 2
# How long a test waits for a stream to end: many heartbeats, so a loaded machine does not fail it.
ENDS_WITHIN_S = 30


@pytest.fixture(scope="module")
async def events_gateway(stack: Stack) -> AsyncIterator[str]:
    settings = GatewaySettings(
        nats_url=stack.nats_url,
        data_dir=stack.data_dir,
        web_dist=stack.data_dir / "no-web",
        sse_heartbeat_s=HEARTBEAT_S,
        sse_streams_per_user=CAP,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}/api/v1"
    server.should_exit = True
    await task


class Stream:
    """An open `GET /events`: its lines, and how it ended."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]):
        self.client, self.headers = client, headers
        self.lines: list[str] = []
        self.status = 0
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.client.stream("GET", "/events", headers=self.headers) as r:
            self.status = r.status_code
            if r.status_code != 200:
                await r.aread()
                self.lines.append(r.text)
                self.opened.set()
                return
            async for line in r.aiter_lines():
                self.lines.append(line)
                if line == ": connected":
                    self.opened.set()

    async def open(self) -> Stream:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.opened.wait(), ENDS_WITHIN_S)
        return self

    async def ended(self) -> str:
        """The reason of the `event: end` the server closed the stream with."""
        assert self.task is not None
        await asyncio.wait_for(self.task, ENDS_WITHIN_S)
        assert "event: end" in self.lines, self.lines
        return json.loads(self.lines[self.lines.index("event: end") + 1].removeprefix("data: "))["reason"]

    async def still_open(self) -> bool:
        assert self.task is not None
        await asyncio.sleep(HEARTBEAT_S * 4)  # several re-checks passed
        return not self.task.done()

    async def close(self) -> None:
        if self.task and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def client(events_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=events_gateway, timeout=60) as c:
        yield c


async def test_logout_ends_the_stream(client: httpx.AsyncClient, new_user: AppUser) -> None:
    stream = await Stream(client, new_user.headers).open()
    assert await stream.still_open()  # re-checked several times, the session holds: it stays
    r = await client.post(
        "/auth/logout", headers=new_user.headers, json={"refresh_token": new_user.refresh_token}
    )
    assert r.status_code == 200, r.text
    assert await stream.ended() == "unauthenticated"
    r = await client.get("/events", headers=new_user.headers)  # nor can it be opened again
    assert r.status_code == 401


async def test_logout_everywhere_ends_every_stream(
    client: httpx.AsyncClient, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}
    streams = [await Stream(client, new_user.headers).open(), await Stream(client, other_headers).open()]
    assert (await client.post("/auth/logout-all", headers=new_user.headers)).status_code == 200
    assert [await s.ended() for s in streams] == ["unauthenticated", "unauthenticated"]


async def test_deactivation_ends_the_stream(
    client: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    stream = await Stream(client, new_user.headers).open()
    r = await client.patch(
        f"/admin/users/{new_user.id}", json={"is_active": False}, headers=new_admin.headers
    )
    assert r.status_code == 200, r.text
    assert await stream.ended() == "unauthenticated"


async def test_expiry_ends_the_stream(
    stack: Stack, client: httpx.AsyncClient, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = stack.services["auth"].deps_as(AuthDeps)
    monkeypatch.setattr(deps, "config", replace(deps.config, access_ttl_s=2))
    user = await register_and_login(http)  # its access token lives 2 s
    stream = await Stream(client, user.headers).open()
    assert await stream.ended() == "unauthenticated"


async def test_streams_per_user_are_capped(client: httpx.AsyncClient, new_user: AppUser) -> None:
    streams = [await Stream(client, new_user.headers).open() for _ in range(CAP)]
    r = await client.get("/events", headers=new_user.headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited", r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert all([await s.still_open() for s in streams])  # the open ones are untouched
    await streams[0].close()
    for _ in range(100):  # the server notices the closed connection at its next heartbeat
        third = Stream(client, new_user.headers)
        await third.open()
        if third.status == 200:
            break
        await asyncio.sleep(HEARTBEAT_S)
    assert third.status == 200
    for s in (*streams, third):
        await s.close()
