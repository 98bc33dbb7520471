"""Bad input and broken services end in a clear error envelope, never a timeout or a crash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from contracts import REGISTRY, AtriumError, Contract, ErrorCode, Header
from contracts.auth import REGISTER, USER_REGISTERED
from contracts.base import Rpc
from services.kit.bus import Ctx, Service
from services.kit.client import call
from tests.conftest import PASSWORD, Stack, unique_email


class Echo(Contract):
    text: str


@pytest.fixture
def probe_rpcs() -> Iterator[dict[str, Rpc]]:
    """Rpcs that exist only for this test (removed from the registry afterwards)."""
    rpcs = {
        name: Rpc(f"probe.thing.{name}", Echo, Echo, access="public")
        for name in ("echo", "crash", "slow", "nobody", "ctx")
    }
    yield rpcs
    for r in rpcs.values():
        REGISTRY.rpcs.pop(r.subject, None)
    REGISTRY.rpcs.pop("probe.health", None)  # declared by the probe Service itself


@dataclass
class ProbeDeps:
    seen: dict[str, str] = field(default_factory=dict)


async def echo(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    return cmd


async def crash(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    raise RuntimeError("secret internals that must not leak")


async def slow(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    await asyncio.sleep(2)
    return cmd


async def context(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    deps.seen["request_id"] = ctx.request_id
    return Echo(text=ctx.request_id)


async def probe_deps(_: Service) -> ProbeDeps:
    return ProbeDeps()


@pytest_asyncio.fixture
async def probe(stack: Stack, probe_rpcs: dict[str, Rpc]):  # type: ignore[no-untyped-def]
    svc = Service(stack.settings("probe"), verify_tokens=False)
    svc.bind(
        probe_deps,
        rpcs={
            probe_rpcs["echo"]: echo,
            probe_rpcs["crash"]: crash,
            probe_rpcs["slow"]: slow,
            probe_rpcs["ctx"]: context,
        },
    )
    await svc.start()
    yield svc, svc.deps_as(ProbeDeps).seen
    await svc.stop()


async def test_handler_exception_becomes_internal_envelope(stack: Stack, probe, probe_rpcs) -> None:
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, probe_rpcs["crash"], {"text": "x"}, timeout=5)
    assert info.value.code == ErrorCode.INTERNAL
    assert "secret internals" not in info.value.message and "request id" in info.value.message
    # the service is still alive afterwards
    assert (await call(stack.nc, probe_rpcs["echo"], {"text": "still here"})).text == "still here"


async def test_malformed_json_and_invalid_fields(stack: Stack, probe, probe_rpcs) -> None:
    msg = await stack.nc.request(probe_rpcs["echo"].subject, b"{nope", timeout=5)
    body = json.loads(msg.data)
    assert body["ok"] is False and body["error"]["code"] == "invalid"
    msg = await stack.nc.request(probe_rpcs["echo"].subject, b'{"text": 5, "extra": 1}', timeout=5)
    err = json.loads(msg.data)["error"]
    assert err["code"] == "invalid"
    assert {d["field"] for d in err["details"]} == {"text", "extra"}


async def test_no_responders_and_timeouts_have_codes(stack: Stack, probe, probe_rpcs) -> None:
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, probe_rpcs["nobody"], {"text": "x"}, timeout=5)
    assert info.value.code == ErrorCode.UNAVAILABLE and "not running" in info.value.message
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, probe_rpcs["slow"], {"text": "x"}, timeout=0.3)
    assert info.value.code == ErrorCode.TIMEOUT


async def test_request_id_reaches_the_handler(stack: Stack, probe, probe_rpcs) -> None:
    _, seen = probe
    reply = await call(stack.nc, probe_rpcs["ctx"], {"text": "x"}, request_id="rid-abc-123")
    assert reply.text == "rid-abc-123" == seen["request_id"]


async def test_request_id_flows_from_http_into_published_events(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    email = unique_email("rid")
    r = await http.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={Header.REQUEST_ID: "trace-from-the-browser-1"},
    )
    assert r.status_code == 201 and r.headers[Header.REQUEST_ID] == "trace-from-the-browser-1"
    js = stack.nc.jetstream()
    msg = await js.get_last_msg(USER_REGISTERED.stream, USER_REGISTERED.subject)
    assert json.loads(msg.data)["email"] == email
    assert msg.headers[Header.REQUEST_ID] == "trace-from-the-browser-1"


async def test_a_stopped_service_is_503_not_a_hang(stack: Stack, http: httpx.AsyncClient) -> None:
    auth = stack.services["auth"]
    await auth.stop()
    try:
        r = await http.post("/auth/register", json={"email": unique_email(), "password": PASSWORD})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "unavailable" and r.json()["error"]["request_id"]
        h = await http.get("/health")
        assert h.status_code == 503 and h.json()["services"]["auth"]["status"] == "down"
    finally:
        stack.services["auth"] = await stack.start_service("auth")
    r = await http.post("/auth/register", json={"email": unique_email(), "password": PASSWORD})
    assert r.status_code == 201


async def test_health_is_green_with_every_part(http: httpx.AsyncClient) -> None:
    r = await http.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["nats"] == "ok" and body["postgres"] == "ok"


async def test_unknown_api_path_is_a_json_404(http: httpx.AsyncClient) -> None:
    r = await http.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_register_over_the_bus_validates_like_http(stack: Stack) -> None:
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, REGISTER, {"email": "bad", "password": "x"})
    assert info.value.code == ErrorCode.INVALID
