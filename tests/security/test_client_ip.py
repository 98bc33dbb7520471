"""Issue 13, item 1: the client's address behind the proxy.

The gateway believes `X-Forwarded-For` only from ATRIUM_TRUSTED_PROXIES (compose: nginx's network). Through
nginx each client keeps its own address (in the session list and the per-IP limits: one client's 30 bad
logins do not lock out another); a peer outside that network that sends the header is taken at its own
address, so a spoofed header changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings, Networks
from services.auth.ratelimit import DEFAULT_RULES
from tests.conftest import PASSWORD, AppUser, Stack, unique_email

NGINX_NETWORK = "172.31.253.0/28"
NGINX = "172.31.253.2"  # the proxy's address on that network
OUTSIDER = "198.51.100.7"  # a peer that reaches the gateway directly


@asynccontextmanager
async def gateway_behind_nginx(stack: Stack) -> AsyncIterator[object]:
    settings = GatewaySettings(
        nats_url=stack.nats_url,
        data_dir=stack.data_dir,
        web_dist=stack.data_dir / "no-web",
        trusted_proxies=Networks.parse(NGINX_NETWORK),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: object, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://atrium.test/api/v1", timeout=30)


async def session_ips(http: httpx.AsyncClient, token: str) -> set[str]:
    r = await http.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {s["ip"] for s in r.json()["items"]}


def test_trusted_proxies_setting() -> None:
    trusted = Networks.parse("10.0.0.0/8, 127.0.0.1,::1")
    assert trusted.contains("10.1.2.3") and trusted.contains("127.0.0.1") and trusted.contains("::1")
    assert trusted.contains("::ffff:10.9.9.9")  # an IPv4 peer on a dual-stack socket
    assert not trusted.contains("11.0.0.1") and not trusted.contains("127.0.0.2") and not trusted.contains("")
    assert GatewaySettings.from_env().trusted_proxies == Networks.parse("127.0.0.1,::1")  # safe default
    with pytest.raises(ValueError, match="ATRIUM_TRUSTED_PROXIES"):
        Networks.parse("nginx")


async def test_each_client_behind_nginx_keeps_its_own_address(stack: Stack, new_user: AppUser) -> None:
    async with gateway_behind_nginx(stack) as app, client_from(app, NGINX) as via_nginx:
        r = await via_nginx.post(
            "/auth/login",
            json={"email": new_user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.10"},
        )
        assert r.status_code == 200, r.text
        assert "203.0.113.10" in await session_ips(via_nginx, r.json()["access_token"])

        # One client's bad logins exhaust its own per-IP budget only: everybody else still signs in.
        guesser = {"X-Forwarded-For": "203.0.113.66"}
        for _ in range(DEFAULT_RULES["login_ip"].limit):
            r = await via_nginx.post(
                "/auth/login", json={"email": unique_email(), "password": "wrong password"}, headers=guesser
            )
            assert r.status_code == 401, r.text
        r = await via_nginx.post(
            "/auth/login", json={"email": new_user.email, "password": PASSWORD}, headers=guesser
        )
        assert r.status_code == 429, r.text
        r = await via_nginx.post(
            "/auth/login",
            json={"email": new_user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.11"},
        )
        assert r.status_code == 200, r.text


async def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(stack: Stack, new_user: AppUser) -> None:
    async with gateway_behind_nginx(stack) as app, client_from(app, OUTSIDER) as outsider:
        r = await outsider.post(
            "/auth/login",
            json={"email": new_user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.20"},
        )
        assert r.status_code == 200, r.text
        ips = await session_ips(outsider, r.json()["access_token"])
        assert OUTSIDER in ips and "203.0.113.20" not in ips

        # Nor can the outsider dodge the per-IP limit by claiming a new address on every attempt.
        for n in range(DEFAULT_RULES["login_ip"].limit):
            r = await outsider.post(
                "/auth/login",
                json={"email": unique_email(), "password": "wrong password"},
                headers={"X-Forwarded-For": f"203.0.113.{100 + n}"},
            )
            assert r.status_code in (401, 429), r.text
        r = await outsider.post(
            "/auth/login",
            json={"email": new_user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.250"},
        )
        assert r.status_code == 429, r.text
