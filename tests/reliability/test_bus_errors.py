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
from contracts.auth import REGISTER, USER_REGISTERED, RegisterUser, UserPublic
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


async def test_reply_carries_the_request_id_and_none_of_the_callers_headers(
    stack: Stack, probe, probe_rpcs
) -> None:
    msg = await stack.nc.request(
        probe_rpcs["echo"].subject,
        b'{"text": "x"}',
        timeout=5,
        headers={Header.REQUEST_ID: "rid-reply-1", Header.AUTHORIZATION: "Bearer not-for-the-reply"},
    )
    assert json.loads(msg.data) == {"ok": True, "data": {"text": "x"}, "error": None}
    assert msg.headers == {Header.REQUEST_ID: "rid-reply-1"}


@dataclass
class GateDeps:
    """Handlers that wait at a gate the test opens, counting how many are in hand at once."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    inside: int = 0
    most_inside: int = 0


async def gated(cmd: Echo, ctx: Ctx, deps: GateDeps) -> Echo:
    deps.inside += 1
    deps.most_inside = max(deps.most_inside, deps.inside)
    await deps.entered.put(cmd.text)
    try:
        await deps.gate.wait()
    finally:
        deps.inside -= 1
    return cmd


async def gate_deps(_: Service) -> GateDeps:
    return GateDeps()


@pytest_asyncio.fixture
async def gated_service(stack: Stack, probe_rpcs: dict[str, Rpc], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A probe service with two slots whose `slow` Rpc waits for the test to open its gate."""
    monkeypatch.setenv("ATRIUM_CONCURRENCY", "2")
    svc = Service(stack.settings("probe"), verify_tokens=False)
    svc.bind(gate_deps, rpcs={probe_rpcs["slow"]: gated, probe_rpcs["echo"]: gated})
    await svc.start()
    yield svc, svc.deps_as(GateDeps)
    await svc.stop()


async def test_requests_beyond_the_slots_wait_and_health_does_not(
    stack: Stack, gated_service, probe_rpcs
) -> None:  # type: ignore[no-untyped-def]
    svc, deps = gated_service
    calls = [
        asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": str(i)}, timeout=30))
        for i in range(5)
    ]
    await deps.entered.get()
    await deps.entered.get()  # two in hand: every slot is taken
    health = await call(stack.nc, REGISTRY.rpcs["probe.health"], {}, timeout=5)
    assert health.service == "probe" and deps.inside == 2
    deps.gate.set()
    replies = await asyncio.gather(*calls)
    assert sorted(r.text for r in replies) == ["0", "1", "2", "3", "4"]
    assert deps.most_inside == 2


async def test_the_slots_go_out_in_arrival_order_over_all_subjects(
    stack: Stack, gated_service, probe_rpcs
) -> None:  # type: ignore[no-untyped-def]
    """A busy subject's waiting requests are not overtaken by another subject's later one, nor it by them: under
    overload the slots go first come, first served (each subject's own line made the busiest wait longest)."""
    svc, deps = gated_service
    held = [
        asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": f"held {i}"}, timeout=30))
        for i in range(2)
    ]
    await deps.entered.get()
    await deps.entered.get()  # both slots taken
    queued = []
    for text in ("busy 0", "busy 1", "busy 2"):
        queued.append(asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": text}, timeout=30)))
        await asyncio.sleep(0.05)  # they arrive in this order
    queued.append(asyncio.create_task(call(stack.nc, probe_rpcs["echo"], {"text": "other"}, timeout=30)))
    await asyncio.sleep(0.2)
    deps.gate.set()
    await asyncio.gather(*held, *queued)
    taken = [deps.entered.get_nowait() for _ in range(deps.entered.qsize())]
    assert taken == ["busy 0", "busy 1", "busy 2", "other"], taken


async def test_stop_answers_the_requests_in_hand_then_takes_no_more(
    stack: Stack, gated_service, probe_rpcs
) -> None:  # type: ignore[no-untyped-def]
    svc, deps = gated_service
    in_hand = asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": "in hand"}, timeout=30))
    await deps.entered.get()
    stopping = asyncio.create_task(svc.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done(), "stop returned while a request was still in hand"
    deps.gate.set()
    assert (await in_hand).text == "in hand"
    await stopping
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, probe_rpcs["slow"], {"text": "late"}, timeout=5)
    assert info.value.code == ErrorCode.UNAVAILABLE


async def test_a_request_still_running_after_the_grace_period_is_answered_unavailable(
    stack: Stack, gated_service, probe_rpcs
) -> None:  # type: ignore[no-untyped-def]
    svc, deps = gated_service
    in_hand = asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": "stuck"}, timeout=30))
    await deps.entered.get()
    await svc.rpcs.drain(grace_s=0.1)  # the gate never opens
    with pytest.raises(AtriumError) as info:
        await in_hand
    assert info.value.code == ErrorCode.UNAVAILABLE and "send it again" in info.value.message
    assert not svc.rpcs.inflight


async def held(cmd: RegisterUser, ctx: Ctx, deps: GateDeps) -> UserPublic:
    """Stands in for a service that is too slow: holds the request until the test opens the gate."""
    await deps.entered.put(ctx.subject)
    await deps.gate.wait()
    raise RuntimeError("released after the caller gave up")


async def test_a_service_too_slow_is_504_with_the_envelope_and_retry_after(
    stack: Stack, http: httpx.AsyncClient, probe_rpcs, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    bus = stack.server.config.app.state.bus  # the gateway's bus client: a short Rpc timeout for this test
    monkeypatch.setattr(bus, "timeout_s", 0.5)
    auth = stack.services["auth"]
    await auth.stop()
    slow = Service(stack.settings("probe"), verify_tokens=False)
    slow.bind(gate_deps, rpcs={REGISTER: held})  # answers auth's subject in auth's queue group
    await slow.start()
    try:
        r = await http.post("/auth/register", json={"email": unique_email(), "password": PASSWORD})
        assert await slow.deps_as(GateDeps).entered.get() == REGISTER.subject  # it reached the slow one
        assert r.status_code == 504, r.text
        body = r.json()["error"]
        assert body["code"] == "timeout" and "did not answer" in body["message"] and body["request_id"]
        assert int(r.headers["Retry-After"]) > 0
    finally:
        slow.deps_as(GateDeps).gate.set()
        await slow.stop()
        stack.services["auth"] = await stack.start_service("auth")


async def test_a_request_whose_caller_gave_up_while_queued_is_dropped_not_handled(
    stack: Stack, gated_service, probe_rpcs
) -> None:  # type: ignore[no-untyped-def]
    svc, deps = gated_service
    held_calls = [
        asyncio.create_task(call(stack.nc, probe_rpcs["slow"], {"text": str(i)}, timeout=30))
        for i in range(2)
    ]
    await deps.entered.get()
    await deps.entered.get()  # both slots taken: the next request of the subject waits in the queue
    with pytest.raises(AtriumError) as info:
        await call(stack.nc, probe_rpcs["slow"], {"text": "given up"}, timeout=0.5)
    assert info.value.code == ErrorCode.TIMEOUT
    deps.gate.set()
    assert sorted(r.text for r in await asyncio.gather(*held_calls)) == ["0", "1"]
    # Same subject, queued after it: by the time this is answered, the given-up one was dropped or handled.
    assert (await call(stack.nc, probe_rpcs["slow"], {"text": "after"}, timeout=30)).text == "after"
    handled = [deps.entered.get_nowait() for _ in range(deps.entered.qsize())]
    assert handled == ["after"], handled
