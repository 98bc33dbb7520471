"""Issue 13, item 8: the AI settings cannot leak the API key or probe the network.

- The saved key only goes where it was entered for: testing another base URL sends no key (a second model
  server records what it received), and saving another provider or base URL needs the key again.
- Link-local and metadata addresses are refused, every address of a host checked (IPv4, IPv6, embedded
  IPv4), also behind a redirect; loopback and private hosts only with ATRIUM_AI_ALLOW_LOCAL_SERVERS.
- A failed test shows nothing of the remote server's reply.
- Every change is an audit entry with its actor (the documents service's audit log).
Over HTTP and straight on the bus.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from contracts import Invalid
from contracts.ai import AI_SETTINGS_TEST, AI_SETTINGS_UPDATE, ProviderTestResult
from infra.embedded import free_port
from services.docs.tables import audit_log
from services.extraction.ai.handlers import AiDeps
from services.extraction.ai.providers.network import BlockedAddress, check_addresses, refusal
from services.kit.client import call
from services.kit.db import Database
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS, wait_for_provider
from tests.fakes_llm.server import FakeLLM

URL = "/apps/documents/settings"
SAVED_KEY = "sk-saved-key-for-the-first-host-7d3e91"
SECRET_REPLY = "INTERNAL-ONLY-3f1a: db password is hunter2"


@pytest.mark.parametrize(
    ("address", "with_local", "without_local"),
    [
        ("169.254.169.254", False, False),  # cloud metadata (IPv4 link-local)
        ("fd00:ec2::254", False, False),  # AWS metadata over IPv6
        ("fe80::1", False, False),
        ("100.100.100.200", False, False),
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("::ffff:169.254.169.254", False, False),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", False, False),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", False, False),  # 6to4 of 169.254.169.254
        ("224.0.0.1", False, False),
        ("255.255.255.255", False, False),
        ("127.0.0.1", True, False),
        ("::1", True, False),
        ("10.1.2.3", True, False),
        ("172.16.0.9", True, False),
        ("192.168.1.10", True, False),
        ("fc00::5", True, False),
        ("100.64.0.1", True, False),
        ("8.8.8.8", True, True),
        ("2606:4700:4700::1111", True, True),
    ],
)
def test_which_addresses_may_be_reached(address: str, with_local: bool, without_local: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (refusal(ip, allow_local=True) is None) is with_local
    assert (refusal(ip, allow_local=False) is None) is without_local


def test_one_refused_address_refuses_the_host() -> None:
    with pytest.raises(BlockedAddress, match="169.254.169.254"):
        check_addresses("rebinding.example", ["8.8.8.8", "169.254.169.254"], allow_local=True)


@pytest_asyncio.fixture
async def admin(stack: Stack, new_admin: AppUser) -> AsyncIterator[AppUser]:
    yield new_admin
    await call(stack.nc, AI_SETTINGS_UPDATE, BUILTIN_DEFAULTS, token=new_admin.access_token)
    await wait_for_provider(stack.nc, new_admin.access_token, "builtin")


@pytest_asyncio.fixture
async def two_servers() -> AsyncIterator[tuple[FakeLLM, FakeLLM]]:
    first, second = await FakeLLM(api_key=SAVED_KEY).start(), await FakeLLM().start()
    yield first, second
    await first.stop()
    await second.stop()


def ai(stack: Stack) -> AiDeps:
    return stack.services["ai"].deps_as(AiDeps)


async def test_the_saved_key_never_goes_to_another_host(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser, two_servers: tuple[FakeLLM, FakeLLM]
) -> None:
    first, second = two_servers
    body = {"provider": "openai_compatible", "base_url": first.base_url + "/v1", "api_key": SAVED_KEY}
    assert (await http.patch(URL, json=body, headers=admin.headers)).status_code == 200
    assert (await http.post(URL + "/test", json={}, headers=admin.headers)).json()["ok"] is True
    assert first.requests[-1].headers["authorization"] == f"Bearer {SAVED_KEY}"  # where it belongs
    # Testing another base URL sends no key at all, over HTTP and on the bus.
    r = await http.post(URL + "/test", json={"base_url": second.base_url + "/v1"}, headers=admin.headers)
    assert r.status_code == 200
    moved = await call(
        stack.nc, AI_SETTINGS_TEST, {"base_url": second.base_url + "/v1"}, token=admin.access_token
    )
    assert isinstance(moved, ProviderTestResult)
    assert len(second.requests) == 2
    assert all(SAVED_KEY not in str(seen.headers) + str(seen.body) for seen in second.requests)
    # Saving another base URL or provider needs the key again; nothing changes without it.
    r = await http.patch(URL, json={"base_url": second.base_url + "/v1"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "api_key"
    with pytest.raises(Invalid):
        await call(stack.nc, AI_SETTINGS_UPDATE, {"provider": "ollama"}, token=admin.access_token)
    settings = (await http.get(URL, headers=admin.headers)).json()
    assert settings["base_url"] == first.base_url + "/v1" and settings["provider"] == "openai_compatible"
    r = await http.patch(
        URL,
        json={"base_url": second.base_url + "/v1", "api_key": "sk-other-0000000000"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.json()["api_key_last4"] == "0000"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:11434",
        "file:///etc/passwd",
    ],
)
async def test_metadata_and_link_local_addresses_are_refused(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser, base_url: str
) -> None:
    r = await http.patch(
        URL,
        json={"provider": "openai_compatible", "base_url": base_url, "api_key": ""},
        headers=admin.headers,
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "base_url", r.text
    r = await http.post(
        URL + "/test", json={"provider": "openai_compatible", "base_url": base_url}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["ok"] is False
    assert (await http.get(URL, headers=admin.headers)).json()["provider"] == "builtin"


async def test_local_servers_only_when_allowed(
    http: httpx.AsyncClient,
    stack: Stack,
    admin: AppUser,
    two_servers: tuple[FakeLLM, FakeLLM],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, local = two_servers
    monkeypatch.setattr(ai(stack), "allow_local_servers", False)
    body = {"provider": "openai_compatible", "base_url": local.base_url + "/v1", "api_key": ""}
    r = await http.patch(URL, json=body, headers=admin.headers)
    assert r.status_code == 422 and "ATRIUM_AI_ALLOW_LOCAL_SERVERS" in r.json()["error"]["message"]
    # By name too: localhost resolves to loopback addresses.
    r = await http.post(
        URL + "/test",
        json={"provider": "ollama", "base_url": f"http://localhost:{local.base_url.rsplit(':', 1)[1]}"},
        headers=admin.headers,
    )
    assert r.json()["ok"] is False and "ATRIUM_AI_ALLOW_LOCAL_SERVERS" in r.json()["message"]
    assert local.requests == []
    monkeypatch.setattr(ai(stack), "allow_local_servers", True)
    assert (await http.patch(URL, json=body, headers=admin.headers)).status_code == 200


class RawServer:
    """A model server that answers every request with one raw HTTP response (an error, a redirect)."""

    def __init__(self, response: bytes):
        self.response = response
        self.port = free_port()
        self.hits = 0
        self.server: Any = None

    async def __aenter__(self) -> RawServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            self.hits += 1
            writer.write(self.response)
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def response(status: str, body: bytes = b"", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{headers}connection: close\r\n\r\n"
    ).encode() + body


async def test_a_failed_test_shows_nothing_of_the_remote_reply(
    http: httpx.AsyncClient, admin: AppUser
) -> None:
    body = b'{"error": {"message": "' + SECRET_REPLY.encode() + b'"}}'
    for status in ("404 Not Found", "401 Unauthorized", "500 Internal Server Error", "400 Bad Request"):
        async with RawServer(response(status, body)) as server:
            r = await http.post(
                URL + "/test",
                json={"provider": "openai_compatible", "base_url": server.url, "api_key": "sk-x"},
                headers=admin.headers,
            )
        assert server.hits >= 1 and r.json()["ok"] is False, r.text
        assert SECRET_REPLY not in r.text and "hunter2" not in r.text
        assert status.split()[0] in r.json()["message"]  # what happened, in plain words


async def test_a_redirect_to_a_metadata_address_is_not_followed(
    http: httpx.AsyncClient, admin: AppUser
) -> None:
    redirect = response(
        "307 Temporary Redirect", headers="location: http://169.254.169.254/latest/meta-data/\r\n"
    )
    async with RawServer(redirect) as server:
        r = await http.post(
            URL + "/test",
            json={"provider": "openai_compatible", "base_url": server.url, "api_key": "sk-x"},
            headers=admin.headers,
        )
    assert server.hits == 1 and r.json()["ok"] is False
    assert "169.254.169.254" in r.json()["message"] and "link-local" in r.json()["message"]


async def test_every_change_is_an_audit_entry_with_its_actor(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser
) -> None:
    r = await http.patch(
        URL, json={"max_upload_mb": 77, "prompt_instructions": "audit me"}, headers=admin.headers
    )
    assert r.status_code == 200
    revision = None
    db = Database(stack.db_urls["docs"], "docs")
    try:
        for _ in range(100):
            async with db.session() as s:
                row = (
                    await s.execute(
                        select(audit_log)
                        .where(audit_log.c.action == "settings.changed", audit_log.c.actor_id == admin.id)
                        .order_by(audit_log.c.at.desc())
                        .limit(1)
                    )
                ).first()
            if row is not None:
                revision = row.details["revision"]
                break
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()
    assert row is not None and revision is not None
    assert row.details["changed"] == ["max_upload_mb", "prompt_instructions"]
    assert "api_key" not in str(row.details.get("key", ""))
    await call(stack.nc, AI_SETTINGS_UPDATE, {"max_upload_mb": 50}, token=admin.access_token)
