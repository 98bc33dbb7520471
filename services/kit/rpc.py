"""The kit's Rpc server: request/reply on plain nats-py subscriptions, one per subject, queue group = service.

Not FastStream's subscribers: dispatching one message through FastStream (its middleware chain, decoder
and call wrapper) cost ≥ 0.4 ms of CPU per message, a nats-py callback 0.08 ms (measured on the 2-core dev
machine), and on a cheap Rpc such as `auth.user.me` that was as much as the handler's own work. The
guarantees are the kit's own, here:

- every request is answered with an envelope, whatever fails (a raising handler, an invalid body, a
  refused caller, a reply that does not fit its model): `internal` carries the request id, no internals;
- `x-request-id` (the caller's, else a new one) is in `request_id_var` while the request is handled, so it
  is in every log line and every message published meanwhile, and it comes back as a reply header;
- at most `slots` requests are handled at once over all subjects (the service's `ATRIUM_CONCURRENCY`, the
  size of its database pool), several of one subject among them; the others wait for a slot in arrival order
  over all subjects. Health checks take no slot;
- a request whose caller stopped waiting while it was queued (its `x-deadline` passed) is dropped, not
  handled: under overload the slots go to requests that can still be answered, not to dead ones;
- `drain()` stops taking requests (the server sends new ones to another instance, or the caller gets
  "no responders" at once) and waits for those in hand; one still running after the grace period is
  cancelled and answered `unavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel

from contracts import AtriumError, Header, Internal, Unavailable
from contracts.base import Rpc

from . import metrics
from .context import Ctx
from .envelope import error_envelope, ok_envelope
from .logging import log_fields, request_id_var
from .outage import outage
from .security import Actor
from .validation import parse_model

log = logging.getLogger("atrium.bus")

Handler = Callable[[Any, Ctx], Awaitable[BaseModel]]
Authorize = Callable[[Rpc[Any, Any], dict[str, str]], Awaitable[Actor | None]]

DRAIN_GRACE_S = 10.0  # how long `drain` waits for the requests in hand before cancelling them
STOPPED = "The service stopped before it answered this request; send it again."


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Route:
    desc: Rpc[Any, Any]
    handler: Handler
    queue: str
    slotted: bool  # takes one of the service's slots and logs a line (every Rpc but the health check)


def _stamp(msg: Msg, header: str) -> float | None:
    """A Unix time the caller stamped on the request (`x-sent-at`, `x-deadline`); None when absent or malformed
    (a caller's bad header is not the server's failure)."""
    value = (msg.headers or {}).get(header)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _observe_queued(service: str, subject: str, msg: Msg) -> None:
    """How long the request waited before a slot took it (from the caller's `x-sent-at`, when it sent one)."""
    sent = _stamp(msg, Header.SENT_AT)
    if sent is not None:
        metrics.RPC_QUEUE_SECONDS.labels(service, subject).observe(max(0.0, time.time() - sent))


def _expired(msg: Msg) -> bool:
    """The caller's deadline (`x-deadline`, sent by `kit.client.call`) passed: nobody reads the reply."""
    deadline = _stamp(msg, Header.DEADLINE)
    return deadline is not None and deadline < time.time()


class RpcServer:
    def __init__(self, service: str, authorize: Authorize, concurrency: int):
        self.service = service
        self.authorize = authorize
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.routes: dict[str, Route] = {}
        self.inflight: set[asyncio.Task[None]] = set()
        self._subs: list[Subscription] = []
        self._nc: nats.NATS | None = None

    def add(self, desc: Rpc[Any, Any], handler: Handler, *, queue: str, slotted: bool = True) -> None:
        if desc.subject in self.routes:
            raise ValueError(f"{self.service} already answers {desc.subject}")
        self.routes[desc.subject] = Route(desc, handler, queue, slotted)

    # ---- transport -----------------------------------------------------------------------------------
    async def start(self, nc: nats.NATS) -> None:
        """Subscribe every route (nats-py subscribes them again by itself after a reconnect)."""
        self._nc = nc
        for route in self.routes.values():
            self._subs.append(
                await nc.subscribe(
                    route.desc.subject, queue=route.queue, cb=functools.partial(self._on_message, route)
                )
            )

    async def _on_message(self, route: Route, msg: Msg) -> None:
        # Each request waits for its slot in a task of its own, so the slots go out in arrival order over all
        # subjects. (Waiting here, in the subscription's task, gave each subject one place in the line: under
        # overload a busy subject's requests queued behind one another — 300 users: the list's p95 wait 880 ms,
        # the other subjects' 150–250 ms.)
        task = asyncio.create_task(self._serve(route, msg))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _serve(self, route: Route, msg: Msg) -> None:
        headers = msg.headers or {}
        try:
            if not route.slotted:
                body, rid = await self.answer(route, msg.data, headers)
            else:
                async with self.slots:
                    if _expired(msg):
                        metrics.RPC_REQUESTS.labels(self.service, route.desc.subject, "expired").inc()
                        log_fields(
                            log,
                            logging.WARNING,
                            "rpc dropped: its caller stopped waiting",
                            subject=msg.subject,
                        )
                        return
                    _observe_queued(self.service, route.desc.subject, msg)
                    body, rid = await self.answer(route, msg.data, headers)
        # Stopped (drain's grace ran out) while waiting for a slot or in the handler.
        except asyncio.CancelledError:
            rid = headers.get(Header.REQUEST_ID, "")
            await self._reply(msg, error_envelope(Unavailable(STOPPED)), rid)
            raise
        await self._reply(msg, body, rid)

    async def _reply(self, msg: Msg, body: bytes, rid: str) -> None:
        if not msg.reply or self._nc is None:
            return
        try:
            # Not `msg.respond`: that sends the request's headers back, the caller's token among them.
            await self._nc.publish(msg.reply, body, headers={Header.REQUEST_ID: rid})
        except Exception as exc:  # the connection is gone: the caller sees a timeout, we see why
            log_fields(log, logging.WARNING, "reply not sent", subject=msg.subject, error=repr(exc))

    async def drain(self, grace_s: float = DRAIN_GRACE_S) -> None:
        """Stop taking requests, answer those in hand (cancelled after `grace_s`: `unavailable`)."""
        subs, self._subs = self._subs, []
        for sub in subs:
            try:  # UNSUB, then hand what already arrived to `_on_message`
                await asyncio.wait_for(sub.drain(), grace_s)
            except Exception:  # connection closed or draining: nothing more will arrive anyway
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass
        pending = set(self.inflight)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                log_fields(log, logging.WARNING, "requests cancelled at stop", count=len(late))
                await asyncio.wait(late, timeout=1.0)

    # ---- one request, transport-free ---------------------------------------------------------------
    async def answer(self, route: Route, data: bytes, headers: dict[str, str]) -> tuple[bytes, str]:
        """The envelope for one request and its request id: verify the caller, validate the body, run
        the handler, with the request id (the caller's `x-request-id`, else a new one) in `request_id_var`."""
        desc = route.desc
        rid = headers.get(Header.REQUEST_ID) or new_request_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        code = None
        try:
            ctx = Ctx(request_id=rid, headers=dict(headers), subject=desc.subject)
            ctx.actor = await self.authorize(desc, headers)
            command = parse_model(desc.request, data)
            result = await route.handler(command, ctx)
            if not isinstance(result, desc.reply):
                result = desc.reply.model_validate(result)
            body = ok_envelope(result)
        except AtriumError as err:
            code, body = err.code.value, error_envelope(err)
        except Exception as exc:
            # A server restarting is `unavailable` (try again), not a bug.
            failed: AtriumError | None = outage(exc)
            if failed is None:
                log.exception("handler for %s failed", desc.subject)
                failed = Internal(
                    f"The {self.service} service failed while handling this request; "
                    f"it is logged with request id {rid}."
                )
            else:
                log.warning("%s: %s (%s)", desc.subject, failed.message, type(exc).__name__)
            code, body = failed.code.value, error_envelope(failed)
        if route.slotted:
            elapsed = time.perf_counter() - started
            metrics.observe_rpc(self.service, desc.subject, code or "ok", elapsed)
            log_fields(
                log,
                logging.WARNING if code else logging.INFO,
                "rpc",
                subject=desc.subject,
                ok=code is None,
                code=code,
                ms=round(elapsed * 1000, 1),
            )
        request_id_var.reset(token)
        return body, rid
