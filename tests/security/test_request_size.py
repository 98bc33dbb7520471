"""Issue 13, item 3: JSON and form bodies are capped and refused with 413 before they are read whole.

Over real HTTP (uvicorn): a 1.5 GB `Content-Length` on /auth/login is answered at once, after a few bytes
were sent; a chunked body that grows past the limit is stopped; nothing it asked for happens. The streamed
uploads (documents, avatar) keep their own, larger limits. nginx's per-location limits are in
tests/security/test_nginx.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from PIL import Image

from gateway.settings import GatewaySettings
from tests.conftest import PASSWORD, AppUser, Stack, unique_email

LIMIT = GatewaySettings().max_body_bytes


async def raw_request(stack: Stack, head: str, body_start: bytes) -> tuple[int, dict]:
    """Send the head and only the first bytes of a body; read the gateway's answer."""
    url = urlsplit(stack.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.encode() + b"\r\n" + body_start)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


async def session_count(http: httpx.AsyncClient, user: AppUser) -> int:
    r = await http.get("/auth/sessions", headers=user.headers)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_a_huge_declared_body_is_refused_before_it_is_read(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    before = await session_count(http, new_user)
    login = json.dumps({"email": new_user.email, "password": PASSWORD}).encode()
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: atrium.test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {3 * 512 * 1024 * 1024}\r\n"  # 1.5 GB announced, a few bytes sent
    )
    status, body = await raw_request(stack, head, login)
    assert status == 413 and body["error"]["code"] == "too_large", body
    assert body["error"]["details"] == {"limit_bytes": LIMIT} and body["error"]["request_id"]
    assert await session_count(http, new_user) == before  # no sign-in happened


async def test_a_chunked_body_is_stopped_at_the_limit(http: httpx.AsyncClient) -> None:
    email = unique_email()

    async def growing() -> AsyncIterator[bytes]:  # valid JSON, with a name far past the limit
        yield json.dumps({"email": email, "password": PASSWORD})[:-1].encode() + b', "full_name": "'
        for _ in range(64):
            yield b"x" * 8192
        yield b'"}'

    r = await http.post("/auth/register", content=growing(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    # Nothing was registered: the address is still free.
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text


async def test_form_bodies_are_capped_too(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await http.post(
        "/auth/token",
        data={"username": new_user.email, "password": PASSWORD, "scope": "x" * (LIMIT + 1)},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    # Just under the limit, the same form is read (and signs in).
    r = await http.post(
        "/auth/token", data={"username": new_user.email, "password": PASSWORD, "scope": "x" * (LIMIT // 2)}
    )
    assert r.status_code == 200, r.text


async def test_uploads_keep_their_own_limits(http: httpx.AsyncClient, new_user: AppUser) -> None:
    buf = io.BytesIO()
    Image.frombytes("RGB", (160, 160), os.urandom(160 * 160 * 3)).save(buf, "PNG")
    assert len(buf.getvalue()) > LIMIT  # noise does not compress: larger than a JSON body may be
    r = await http.put(
        "/profile/avatar", content=buf.getvalue(), headers={**new_user.headers, "Content-Type": "image/png"}
    )
    assert r.status_code == 200, r.text
