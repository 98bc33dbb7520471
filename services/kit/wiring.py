"""How a service is wired: tables of handlers, background loops, and the checks that keep them honest.

Every handler is a plain function `async (command, ctx, deps) -> reply`; an app.py is a few tables and
a dependency factory, bound by `Service.bind` (services/kit/bus.py):

    RPCS: RpcTable[AuthDeps] = {LOGIN: sessions.login, ME: accounts.me}
    EVENTS: EventTable[ProfileDeps] = {USER_DELETED: Consumer(profiles.forget_user, "profile_user_deleted")}
    LOOPS: list[Loop[AuthDeps]] = [Loop("auth-housekeeping", housekeeping.run, every_s=600)]

    def create_service(settings: ServiceSettings) -> Service:
        svc = Service(settings)
        svc.bind(make_deps, rpcs=RPCS, events=EVENTS, loops=LOOPS)
        return svc

A table entry whose handler does not take the descriptor's model, or does not return its reply, is
refused when the service is created, not when the first message arrives.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from contracts.base import Event, Rpc

from .context import Ctx
from .logging import log_fields

log = logging.getLogger("atrium.loops")

D = TypeVar("D")
E = TypeVar("E", bound=BaseModel)

# (command, ctx, deps) -> reply model. The command is the Rpc's request model (`Empty` when it has none).
RpcHandler = Callable[[Any, Ctx, D], Awaitable[BaseModel]]
RpcTable = Mapping[Rpc[Any, Any], RpcHandler[D]]


@dataclass(frozen=True)
class Consumer(Generic[E, D]):
    """A durable JetStream consumer of one event. A failure is redelivered after a growing delay; after
    `max_deliver` attempts `give_up(event, error, ctx, deps)` records the terminal state and the message
    is terminated (never stuck)."""

    handler: Callable[[E, Ctx, D], Awaitable[None]]
    durable: str
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    give_up: Callable[[E, BaseException, Ctx, D], Awaitable[None]] | None = None
    batch_size: int = 1
    deliver_new_only: bool = False


EventTable = Mapping[Event[Any], Consumer[Any, D]]


@dataclass(frozen=True)
class Loop(Generic[D]):
    """`fn(deps)` every `every_s` seconds while the service runs (first after `every_s`, or at once with
    `run_at_start`). A failure is logged and the loop carries on; stopping the service cancels it."""

    name: str
    fn: Callable[[D], Awaitable[object]]
    every_s: float
    run_at_start: bool = False


class Loops:
    """The background loops of one service instance."""

    def __init__(self, service: str):
        self.service = service
        self._pending: list[
            tuple[str, Callable[[], Awaitable[object]], float, bool, asyncio.Event | None]
        ] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.running = False

    def add(
        self,
        name: str,
        fn: Callable[[], Awaitable[object]],
        every_s: float,
        *,
        run_at_start: bool = False,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run `fn` every `every_s` seconds, or as soon as `wake` is set. Before `start`, it waits for it."""
        if name in self._tasks or any(p[0] == name for p in self._pending):
            raise ValueError(f"{self.service} already has a loop named {name!r}")
        entry = (name, fn, every_s, run_at_start, wake)
        if self.running:
            self._launch(*entry)
        else:
            self._pending.append(entry)

    def start(self) -> None:
        self.running = True
        for entry in self._pending:
            self._launch(*entry)
        self._pending.clear()

    async def stop(self) -> None:
        self.running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def names(self) -> list[str]:
        return [*self._tasks, *(p[0] for p in self._pending)]

    def _launch(
        self,
        name: str,
        fn: Callable[[], Awaitable[object]],
        every_s: float,
        run_at_start: bool,
        wake: asyncio.Event | None,
    ) -> None:
        self._tasks[name] = asyncio.create_task(
            self._run(name, fn, every_s, run_at_start, wake), name=f"{self.service}:{name}"
        )

    async def _run(
        self,
        name: str,
        fn: Callable[[], Awaitable[object]],
        every_s: float,
        run_at_start: bool,
        wake: asyncio.Event | None,
    ) -> None:
        log_fields(log, logging.INFO, "loop started", service=self.service, loop=name, every_s=every_s)
        if not run_at_start:
            await _pause(every_s, wake)
        while True:
            if wake is not None:
                wake.clear()  # a wake-up during this pass means: one more pass right after it
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed pass never ends the loop
                log_fields(
                    log,
                    logging.WARNING,
                    "loop pass failed; it runs again",
                    service=self.service,
                    loop=name,
                    retry_in_s=every_s,
                    error=repr(exc),
                )
            await _pause(every_s, wake)


async def _pause(seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(wake.wait(), seconds)
    except TimeoutError:
        pass


# ---- the checks at bind time ------------------------------------------------------------------------


def check_rpc_handler(desc: Rpc[Any, Any], handler: Callable[..., Any]) -> None:
    _check(f"the handler of {desc.subject}", handler, 3, takes=desc.request, returns=desc.reply)


def check_consumer(desc: Event[Any], consumer: Consumer[Any, Any]) -> None:
    _check(f"the consumer of {desc.subject}", consumer.handler, 3, takes=desc.model, returns=None)
    if consumer.give_up is not None:
        _check(f"the give-up of {desc.subject}", consumer.give_up, 4, takes=desc.model, returns=None)


def _check(
    what: str,
    handler: Callable[..., Any],
    arity: int,
    *,
    takes: type[BaseModel],
    returns: type[BaseModel] | None,
) -> None:
    name = getattr(handler, "__qualname__", repr(handler))
    params = list(inspect.signature(handler).parameters.values())
    shape = "(command, ctx, deps)" if arity == 3 else "(event, error, ctx, deps)"
    if len(params) != arity:
        raise TypeError(f"{what} ({name}) must take {shape}; it takes {len(params)} argument(s).")
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:
        raise TypeError(
            f"{what} ({name}): its type hints cannot be resolved ({exc}); import its types at module level."
        ) from None
    first = hints.get(params[0].name)
    if not (isinstance(first, type) and issubclass(takes, first)):
        raise TypeError(f"{what} ({name}) must take {takes.__name__} as its first argument, not {first!r}.")
    if hints.get(params[arity - 2].name) is not Ctx:
        raise TypeError(f"{what} ({name}) must take the Ctx as argument {arity - 1} {shape}.")
    ret = hints.get("return")
    if returns is None:
        if ret not in (None, type(None)):
            raise TypeError(f"{what} ({name}) must return None, not {ret!r}.")
    elif not (isinstance(ret, type) and issubclass(ret, returns)):
        raise TypeError(f"{what} ({name}) must return {returns.__name__}, not {ret!r}.")
