"""Issue 13, item 15: quiet errors.

- A document's failure tells its owner nothing of the internals: no host, port or base URL of the AI
  provider (on the bus, where the documents service records it for the task list).
- The public /health says ok / not ok only; what is down and why is for administrators (their token) and
  for the machine itself (ATRIUM_HEALTH_DETAILS_FROM); a spoofed X-Forwarded-For does not unlock it.
- Password reset and confirmation links carry their token in the URL fragment, which browsers never send,
  so nginx's access log and Referer headers never see it.
"""

from __future__ import annotations

import asyncio
import email as email_parser
import email.policy as email_policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio
from fastapi import FastAPI

from contracts.documents import DocumentFailed
from gateway.app import create_app
from gateway.settings import GatewaySettings
from infra.embedded import free_port
from services.extraction.ai.handlers import PUBLIC_FAILURES
from tests.conftest import MAIL_DIR, PASSWORD, AppUser, Stack, unique_email
from tests.fakes_llm.helpers import (
    BUILTIN_DEFAULTS,
    INVOICE_PAGE,
    PipelineWatch,
    publish_extracted,
    set_settings,
    wait_for_provider,
)

OUTSIDER = "203.0.113.5"


@asynccontextmanager
async def public_gateway(stack: Stack) -> AsyncIterator[FastAPI]:
    app = create_app(GatewaySettings(nats_url=stack.nats_url, data_dir=stack.data_dir))
    async with app.router.lifespan_context(app):
        yield app


def client_at(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://atrium.test/api/v1", timeout=30)


async def test_public_health_says_ok_or_not_and_nothing_else(
    stack: Stack, new_user: AppUser, new_admin: AppUser
) -> None:
    async with public_gateway(stack) as app:
        async with client_at(app, OUTSIDER) as outsider:
            anonymous = await outsider.get("/health")
            as_user = await outsider.get("/health", headers=new_user.headers)
            spoofed = await outsider.get("/health", headers={"X-Forwarded-For": "127.0.0.1"})
            as_admin = await outsider.get("/health", headers=new_admin.headers)
        # Behind a proxy on this machine (trusted), a remote client is still remote.
        async with client_at(app, "127.0.0.1") as via_local_proxy:
            proxied = await via_local_proxy.get("/health", headers={"X-Forwarded-For": OUTSIDER})
            local = await via_local_proxy.get("/health")
    for r in (anonymous, as_user, spoofed, proxied):
        assert r.status_code in (200, 503) and set(r.json()) == {"status"}, r.text
        assert r.json()["status"] in ("ok", "degraded")
    for r in (as_admin, local):
        assert {"status", "nats", "postgres", "services"} <= set(r.json()), r.text
        assert "auth" in r.json()["services"]


@pytest_asyncio.fixture
async def admin_bus(stack: Stack, new_admin: AppUser) -> AsyncIterator[str]:
    await set_settings(stack.nc, new_admin.access_token, **BUILTIN_DEFAULTS)
    await wait_for_provider(stack.nc, new_admin.access_token, "builtin")
    yield new_admin.access_token
    await set_settings(stack.nc, new_admin.access_token, **BUILTIN_DEFAULTS)


async def test_a_provider_failure_shows_its_owner_no_internal_address(stack: Stack, admin_bus: str) -> None:
    port = free_port()  # nothing listens there: the provider cannot be reached
    await set_settings(
        stack.nc, admin_bus, provider="ollama", base_url=f"http://127.0.0.1:{port}", model="m", api_key=""
    )
    await wait_for_provider(stack.nc, admin_bus, "ollama")
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        for _ in range(600):
            failures = watch.of(event.document_id, DocumentFailed)
            if failures:
                break
            await asyncio.sleep(0.1)
    assert failures, "the analysis did not fail"
    failed = failures[0]
    assert failed.reason == "provider_error"
    assert failed.message == PUBLIC_FAILURES["provider_error"]
    assert str(port) not in failed.message and "127.0.0.1" not in failed.message


def newest_mail_body(address: str, subject_word: str) -> str:
    bodies = []
    for path in sorted(MAIL_DIR[0].glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email_parser.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if msg["To"] == address and subject_word.lower() in str(msg["Subject"]).lower():
            bodies.append(msg.get_content())  # type: ignore[attr-defined]
    assert bodies, f"no mail about {subject_word!r} to {address}"
    return str(bodies[-1])


async def test_link_tokens_travel_in_the_fragment(http: httpx.AsyncClient) -> None:
    email = unique_email()
    assert (await http.post("/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    confirm = newest_mail_body(email, "confirm")
    assert "/verify-email#token=" in confirm and "?token=" not in confirm
    assert (await http.post("/auth/password/forgot", json={"email": email})).status_code in (200, 202)
    reset = newest_mail_body(email, "reset")
    assert "/reset-password#token=" in reset and "?token=" not in reset
