"""The kit's wiring (services/kit/wiring.py, Service.bind): handlers as `(command, ctx, deps)`, every
failure an error envelope, loops that survive their own errors. Requests go straight to the kit's Rpc
server (`RpcServer.answer`, what its NATS subscriptions call) here; tests/reliability/test_bus_errors.py
sends them over a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from contracts import REGISTRY, Contract, Empty, NotFound
from contracts.base import Rpc
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.context import Ctx
from services.kit.wiring import Loop, Loops


class Echo(Contract):
    text: str


@dataclass
class ProbeDeps:
    prefix: str
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def rpcs() -> Iterator[dict[str, Rpc[Echo, Echo]]]:
    made = {n: Rpc(f"probe.wiring.{n}", Echo, Echo, access="public") for n in ("echo", "crash", "missing")}
    yield made
    for r in made.values():
        REGISTRY.rpcs.pop(r.subject, None)
    REGISTRY.rpcs.pop("probe.health", None)


async def echo(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    deps.seen.append(ctx.request_id)
    return Echo(text=deps.prefix + cmd.text)


async def crash(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    raise RuntimeError("secret internals that must not leak")


async def missing(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Echo:
    raise NotFound("There is no such thing.")


async def make_deps(svc: Service) -> ProbeDeps:
    return ProbeDeps(prefix=f"{svc.name}:")


def probe_service() -> Service:
    return Service(ServiceSettings(name="probe", nats_url="nats://127.0.0.1:1"), verify_tokens=False)


async def request(svc: Service, subject: str, body: dict[str, str]) -> dict:  # type: ignore[type-arg]
    reply, rid = await svc.rpcs.answer(
        svc.rpcs.routes[subject], json.dumps(body).encode(), {"x-request-id": "rid-1"}
    )
    assert rid == "rid-1"
    return json.loads(reply)  # type: ignore[no-any-return]


async def test_handlers_get_command_ctx_and_deps_and_failures_are_envelopes(rpcs) -> None:  # type: ignore[no-untyped-def]
    svc = probe_service()
    svc.bind(make_deps, rpcs={rpcs["echo"]: echo, rpcs["crash"]: crash, rpcs["missing"]: missing})
    await svc.build_deps()
    ok = await request(svc, rpcs["echo"].subject, {"text": "hi"})
    assert ok == {"ok": True, "data": {"text": "probe:hi"}, "error": None}
    assert svc.deps_as(ProbeDeps).seen == ["rid-1"]

    failed = await request(svc, rpcs["crash"].subject, {"text": "x"})
    assert failed["ok"] is False and failed["error"]["code"] == "internal"
    assert "secret internals" not in failed["error"]["message"]
    assert "request id" in failed["error"]["message"]

    gone = await request(svc, rpcs["missing"].subject, {"text": "x"})
    assert gone["error"]["code"] == "not_found" and gone["error"]["message"] == "There is no such thing."

    invalid = await request(svc, rpcs["echo"].subject, {"txt": "x"})
    assert invalid["error"]["code"] == "invalid"
    assert {d["field"] for d in invalid["error"]["details"]} == {"text", "txt"}


def test_deps_as_checks_the_kind() -> None:
    svc = probe_service()
    with pytest.raises(RuntimeError, match="no dependencies yet"):
        svc.deps_as(ProbeDeps)


async def test_deps_as_refuses_another_kind(rpcs) -> None:  # type: ignore[no-untyped-def]
    svc = probe_service()
    svc.bind(make_deps, rpcs={rpcs["echo"]: echo})
    await svc.build_deps()
    assert svc.deps_as(ProbeDeps).prefix == "probe:"
    with pytest.raises(TypeError, match="not Echo"):
        svc.deps_as(Echo)


async def wrong_command(cmd: Empty, ctx: Ctx, deps: ProbeDeps) -> Echo:
    return Echo(text="")


async def wrong_reply(cmd: Echo, ctx: Ctx, deps: ProbeDeps) -> Empty:
    return Empty()


async def old_shape(cmd: Echo, ctx: Ctx) -> Echo:
    return cmd


async def swapped(cmd: Echo, deps: ProbeDeps, ctx: Ctx) -> Echo:
    return cmd


@pytest.mark.parametrize(
    ("handler", "complaint"),
    [
        (wrong_command, "must take Echo"),
        (wrong_reply, "must return Echo"),
        (old_shape, r"must take \(command, ctx, deps\)"),
        (swapped, "must take the Ctx"),
    ],
)
def test_bind_refuses_a_handler_that_does_not_fit_its_subject(rpcs, handler, complaint) -> None:  # type: ignore[no-untyped-def]
    svc = probe_service()
    with pytest.raises(TypeError, match=complaint):
        svc.bind(make_deps, rpcs={rpcs["echo"]: handler})


def test_bind_once() -> None:
    svc = probe_service()
    svc.bind(make_deps)
    with pytest.raises(RuntimeError, match="bind once"):
        svc.bind(make_deps)


async def test_a_loop_that_raises_keeps_running() -> None:
    calls: list[int] = []
    second = asyncio.Event()

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the database is away")
        second.set()

    loops = Loops("probe")
    loops.add("flaky", flaky, 0.01, run_at_start=True)
    loops.start()
    try:
        await asyncio.wait_for(second.wait(), 10)
    finally:
        await loops.stop()
    assert calls[:2] == [0, 1]
    assert loops.names == []


async def test_a_woken_loop_runs_at_once_and_stop_cancels_it() -> None:
    wake = asyncio.Event()
    ran: asyncio.Queue[int] = asyncio.Queue()

    async def once() -> None:
        await ran.put(1)

    loops = Loops("probe")
    loops.add("woken", once, 3600, run_at_start=False, wake=wake)
    loops.start()
    wake.set()  # an hour early
    await asyncio.wait_for(ran.get(), 10)
    wake.set()
    await asyncio.wait_for(ran.get(), 10)
    await loops.stop()
    assert loops.names == [] and ran.empty()


async def test_bound_loops_get_the_deps(rpcs) -> None:  # type: ignore[no-untyped-def]
    got: asyncio.Queue[ProbeDeps] = asyncio.Queue()

    async def tick(deps: ProbeDeps) -> None:
        await got.put(deps)

    svc = probe_service()
    svc.bind(make_deps, loops=[Loop("tick", tick, every_s=3600, run_at_start=True)])
    with pytest.raises(ValueError, match="already has a loop"):
        svc.loops.add("tick", lambda: asyncio.sleep(0), 1)
    await svc.build_deps()
    svc.loops.start()
    try:
        assert (await asyncio.wait_for(got.get(), 10)) is svc.deps_as(ProbeDeps)
    finally:
        await svc.loops.stop()
