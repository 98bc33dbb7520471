"""The service runtime: one NATS connection (a FastStream NatsBroker's) wired to the contracts.

`Service.bind(make_deps, rpcs={Rpc: handler}, events={Event: Consumer(...)}, loops=[Loop(...)])` is how
every service is wired (services/kit/wiring.py): each Rpc becomes a queue-group subscription of the kit's
Rpc server (services/kit/rpc.py, plain nats-py: the hot path) that verifies the caller, validates the
request and always answers with an envelope; each event a durable JetStream pull consumer (FastStream's)
that acks on success and redelivers with a delay on failure; each loop a background task.
Handlers are plain `async (command, ctx, deps)`; transport code lives here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import nats
from faststream.middlewares import AckPolicy, BaseMiddleware
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsBroker, PullSub
from faststream.nats.message import NatsMessage
from faststream.nats.security import NatsUserPassword
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table

from contracts import (
    REGISTRY,
    AtriumError,
    Empty,
    Forbidden,
    Header,
    HealthReply,
    Internal,
    health_rpc,
)
from contracts.auth import AUTH_STATE_BUCKET, AUTH_STATE_PUSH, JWKS, AuthStateEntry, Jwks
from contracts.base import Event, Rpc, Stream

from . import metrics
from .client import call
from .config import ServiceSettings, nats_servers, service_concurrency
from .context import Ctx
from .db import Database
from .jetstream import ensure_kv, ensure_object_store, ensure_streams, js_replicas
from .logging import log_fields, request_id_var
from .outbox import Outbox, jetstream_publisher
from .rpc import RpcServer, new_request_id
from .security import Actor, KeySource, TokenVerifier, enrolment_refusal, scope_refusal
from .validation import parse_model, validation_details
from .wiring import Consumer, EventTable, Loop, Loops, RpcTable, check_consumer, check_rpc_handler

# Kept importable from here for the code that reaches them through the bus.
__all__ = [
    "Ctx",
    "Service",
    "bus_verifier",
    "ensure_kv",
    "ensure_object_store",
    "ensure_streams",
    "js_replicas",
    "parse_model",
    "validation_details",
]

D = TypeVar("D")
DepsFactory = Callable[["Service"], Awaitable[D]]  # builds a service's deps once it is connected

log = logging.getLogger("atrium.bus")

RETRY_DELAYS_S = (2.0, 5.0, 15.0, 30.0, 60.0)
RELAY_IDLE_S = 1.0  # the outbox relay looks for rows other processes wrote at least this often
CONSUMER_METRICS_EVERY_S = 10.0  # how often a service reads its consumers' lag for its metrics


class RequestContextMiddleware(BaseMiddleware):
    """Carries `x-request-id` from every consumed event into logs and every message published while
    handling it (Rpc requests get the same from the kit's Rpc server, services/kit/rpc.py)."""

    async def consume_scope(self, call_next, msg):  # type: ignore[no-untyped-def]
        rid = (msg.headers or {}).get(Header.REQUEST_ID) or new_request_id()
        token = request_id_var.set(rid)
        try:
            return await call_next(msg)
        finally:
            request_id_var.reset(token)

    async def publish_scope(self, call_next, cmd):  # type: ignore[no-untyped-def]
        rid = request_id_var.get()
        if rid:
            headers = dict(cmd.headers or {})
            headers.setdefault(Header.REQUEST_ID, rid)
            cmd.headers = headers
        return await call_next(cmd)


async def _undecoded(msg: NatsMessage) -> NatsMessage:
    """Event consumers get the message itself and parse its body with the contract's model. Without this
    decoder and with `apply_types=False`, FastStream neither JSON-decodes every body first nor resolves
    a `Context` parameter, which it does in a thread pool: a thread hop per message."""
    return msg


def _quiet_logger(name: str) -> logging.Logger:
    """FastStream logs every message at INFO; our own `rpc` line says more, so keep its warnings only."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return logger


HealthCheck = Callable[[], Awaitable[str]]


def bus_verifier(nc: Callable[[], nats.NATS], *, key_source: KeySource | None = None) -> TokenVerifier:
    """A TokenVerifier that fetches the JWKS over the bus (`auth.keys.jwks`, unless `key_source` is given)
    and follows the `auth_state` bucket, over the connection `nc()` returns once it is connected."""

    async def jwks() -> Jwks:
        return await call(nc(), JWKS, {}, timeout=5)  # type: ignore[no-any-return]

    async def state() -> Any:
        return await ensure_kv(nc().jetstream(), AUTH_STATE_BUCKET, history=1)

    async def pushed(apply: Callable[[str, bytes | None], None]) -> Any:
        async def on_entry(msg: Any) -> None:
            try:
                entry = AuthStateEntry.model_validate_json(msg.data)
            except ValidationError:
                return
            apply(entry.key, entry.value.encode() if entry.value is not None else None)

        return await nc().subscribe(AUTH_STATE_PUSH.subject(), cb=on_entry)

    return TokenVerifier(key_source=key_source or jwks, state_bucket=state, state_push=pushed)


class Service:
    """One microservice: its broker, its subscribers, its deps, its loops, its start-up and shutdown.

    `key_source` replaces `auth.keys.jwks` as the source of the keys that verify tokens (the auth
    service verifies with its own). After `start`, `deps_as(Kind)` returns what the dependency factory
    built (tests drive handlers with the live dependencies that way).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        streams: Sequence[Stream] = (),
        verify_tokens: bool = True,
        key_source: KeySource | None = None,
    ):
        self.settings = settings
        self.name = settings.name
        self.streams = list(streams) or list(REGISTRY.streams.values())
        login = settings.nats_login.connect_options()
        # Pull consumers take their own inbox prefix; with a NATS user it must be that user's inbox.
        self.pull_inbox_prefix = f"{login['inbox_prefix']}.".encode() if login else nats.js.api.INBOX_PREFIX
        self.broker = NatsBroker(
            nats_servers(settings.nats_url),
            name=f"atrium-{self.name}",
            # its own NATS user (infra/nats): only the subjects this service needs
            **(
                {
                    "security": NatsUserPassword(login["user"], login["password"]),
                    "inbox_prefix": login["inbox_prefix"],
                }
                if login
                else {}
            ),
            middlewares=[RequestContextMiddleware],
            apply_types=False,
            decoder=_undecoded,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=3,
            logger=_quiet_logger(f"atrium.{self.name}.faststream"),
        )
        self.verifier: TokenVerifier | None = (
            bus_verifier(lambda: self.nc, key_source=key_source) if verify_tokens else None
        )
        self.health_checks: dict[str, HealthCheck] = {}
        self.on_startup: list[Callable[[], Awaitable[None]]] = []
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []
        self.loops = Loops(self.name)
        self._make_deps: DepsFactory[Any] | None = None
        self._deps: Any = None
        self.started_at = time.monotonic()
        self.durables: list[tuple[str, str]] = []  # (stream, durable) of its consumers, for metrics
        self._stopped = False
        # Requests handled at once, over all Rpc subjects: as many as the database pool's connections
        # (services.kit.db), so none waits for a connection. Health checks do not queue behind them.
        self.rpcs = RpcServer(self.name, self.authorize, service_concurrency())
        health = health_rpc(self.name)
        self._health_subject = health.subject
        self.rpc(health)(self._health)

    # ---- connections -------------------------------------------------------------------------
    @property
    def nc(self) -> nats.NATS:
        return self.broker.config.connection_state.connection  # type: ignore[no-any-return]

    @property
    def js(self) -> nats.js.JetStreamContext:
        return self.broker.config.connection_state.stream  # type: ignore[no-any-return]

    async def start(self) -> None:
        if self.settings.niceness:
            # Background work takes the CPU that requests leave (child processes inherit this).
            os.nice(self.settings.niceness)
        delay = 0.2
        while True:
            try:
                await self.broker.connect()
                break
            except Exception as exc:  # NATS not up yet: keep trying, loudly
                log_fields(
                    log, logging.WARNING, "waiting for NATS", url=self.settings.nats_url, error=str(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not self.nc.is_connected:
            # nats-py 2.16 returns from connect() when the server's first PING overtakes the handshake's PONG
            # (a slow server: nats-server#1174) and then never counts as connected; every request would time
            # out. Only a new connection helps: exit, and the supervisor (compose, ./atrium up) restarts us.
            raise ConnectionError("the NATS handshake did not complete; restart the service to connect anew")
        await ensure_streams(self.js, self.streams)
        await self.build_deps()
        for hook in self.on_startup:
            await hook()
        if self.verifier:
            await self.verifier.start()
        await self.broker.start()
        await self.rpcs.start(self.nc)
        # The server must know our subscriptions before anyone is told we are up (else: no responders).
        # nats-py writes flush()'s PING straight to the socket, ahead of SUBs still queued for its flusher
        # task, so the first PONG proves nothing; by then the flusher has written them: the second does.
        await self.nc.flush(timeout=5)
        await self.nc.flush(timeout=5)
        if self.durables:
            self.loops.add(
                "consumer-metrics", self._consumer_metrics, CONSUMER_METRICS_EVERY_S, run_at_start=True
            )
        self.loops.start()
        metrics.expose(self.name, self.settings.data_dir)
        metrics.watch_runtime(self.name)
        log_fields(log, logging.INFO, "service started", service=self.name)

    async def stop(self) -> None:
        """Drain: no new requests, answer those in hand; then loops, event consumers, connections."""
        if self._stopped:
            return
        self._stopped = True
        await self.rpcs.drain()
        await self.loops.stop()
        for hook in reversed(self.on_shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        if self.verifier:
            await self.verifier.stop()
        await self.broker.stop()

    async def run_forever(self) -> None:
        import signal

        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()

    async def _consumer_metrics(self) -> None:
        await metrics.record_consumers(self.name, self.js, self.durables)

    async def _health(self, _: Empty, ctx: Ctx) -> HealthReply:
        checks: dict[str, str] = {"nats": "ok" if self.nc and self.nc.is_connected else "down"}
        for name, check in self.health_checks.items():
            try:
                checks[name] = await asyncio.wait_for(check(), 3)
            except Exception as exc:
                checks[name] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return HealthReply(
            service=self.name,
            status="ok" if ok else "degraded",
            uptime_s=round(time.monotonic() - self.started_at, 1),
            checks=checks,
        )

    # ---- wiring ------------------------------------------------------------------------------------
    def bind(
        self,
        make_deps: DepsFactory[D],
        *,
        rpcs: RpcTable[D] | None = None,
        events: EventTable[D] | None = None,
        loops: Sequence[Loop[D]] = (),
    ) -> None:
        """Wire the service: `make_deps(service)` runs once at start, after NATS is connected and before
        anything is served; every handler is then called as `(command, ctx, deps)`."""
        if self._make_deps is not None:
            raise RuntimeError(f"{self.name} is already bound; bind once, with every table.")
        self._make_deps = make_deps
        role = self.settings.role  # a process answers requests, works through events, or both (config.ROLES)
        for desc, handler in (rpcs or {}).items():
            check_rpc_handler(desc, handler)
            if role != "events":
                self.rpc(desc)(functools.partial(self._call_rpc, handler))
        for event_desc, consumer in (events or {}).items():
            check_consumer(event_desc, consumer)
            if role != "requests":
                self._consume(event_desc, consumer)
        for loop in loops if role != "requests" else ():
            self.loops.add(
                loop.name,
                functools.partial(self._call_loop, loop),
                loop.every_s,
                run_at_start=loop.run_at_start,
            )

    async def _call_rpc(
        self, handler: Callable[[Any, Ctx, Any], Awaitable[BaseModel]], cmd: Any, ctx: Ctx
    ) -> BaseModel:
        return await handler(cmd, ctx, self._deps)

    async def _call_loop(self, loop: Loop[Any]) -> object:
        return await loop.fn(self._deps)

    def _consume(self, desc: Event[Any], consumer: Consumer[Any, Any]) -> None:
        async def handle(event: Any, ctx: Ctx) -> None:
            await consumer.handler(event, ctx, self._deps)

        give_up = consumer.give_up

        async def on_give_up(event: Any, exc: BaseException, ctx: Ctx) -> None:
            assert give_up is not None
            await give_up(event, exc, ctx, self._deps)

        self.on_event(
            desc,
            durable=consumer.durable,
            max_deliver=consumer.max_deliver,
            ack_wait_s=consumer.ack_wait_s,
            batch_size=consumer.batch_size,
            deliver_new_only=consumer.deliver_new_only,
            give_up=on_give_up if give_up is not None else None,
        )(handle)

    async def build_deps(self) -> None:
        """Run the dependency factory (`start` does; a handler's unit test under TestNatsBroker calls it)."""
        if self._make_deps is not None and self._deps is None:
            self._deps = await self._make_deps(self)

    def deps_as(self, kind: type[D]) -> D:
        """The dependencies the factory built, checked to be a `kind` (after `start`)."""
        if self._deps is None:
            raise RuntimeError(f"{self.name} has no dependencies yet: bind it and start it first.")
        if not isinstance(self._deps, kind):
            raise TypeError(
                f"{self.name}'s dependencies are {type(self._deps).__name__}, not {kind.__name__}"
            )
        return self._deps

    def database(self) -> Database:
        """The service's database (its own schema and role), with its health check and disposal."""
        db = Database(self.settings.database_url, self.settings.schema)
        self.health_checks["postgres"] = db.ping
        metrics.watch_pool(self.name, db.engine)
        self.on_shutdown.append(db.dispose)
        return db

    def outbox(self, table: Table, db: Database) -> Outbox:
        """The service's transactional outbox over `table` (services/kit/outbox.py), with its relay loop."""
        box = Outbox(table, db, self.publish_raw)
        self.loops.add("outbox-relay", box.relay, RELAY_IDLE_S, run_at_start=True, wake=box.wakeup)
        return box

    # ---- request/reply ---------------------------------------------------------------------------
    def rpc(
        self, desc: Rpc[Any, Any]
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Answer `desc` with `handler(command, ctx)` (services/kit/rpc.py), queue group = its service."""

        def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.rpcs.add(
                desc, handler, queue=desc.service or self.name, slotted=desc.subject != self._health_subject
            )
            return handler

        return register

    async def authorize(self, desc: Rpc[Any, Any], headers: dict[str, str]) -> Actor | None:
        raw = headers.get(Header.AUTHORIZATION, "")
        if desc.access == "public":
            if raw and self.verifier:
                try:
                    actor = await self.verifier.verify(raw)
                except AtriumError:
                    return None
                refused = scope_refusal(desc, actor) or enrolment_refusal(desc, actor, self.verifier.policy)
                return None if refused else actor
            return None
        if not self.verifier:
            raise Internal(f"{self.name} cannot verify tokens")
        actor = await self.verifier.verify(raw)
        refusal = scope_refusal(desc, actor)
        if refusal:
            raise Forbidden(refusal, {"reason": "token_scope"})
        enrol_first = enrolment_refusal(desc, actor, self.verifier.policy)
        if enrol_first is not None:
            raise enrol_first
        if desc.access == "admin" and not actor.is_admin:
            raise Forbidden("This needs an administrator.")
        if desc.access == "service" and actor.kind != "service":
            raise Forbidden("This subject is for services only.")
        return actor

    # ---- events ------------------------------------------------------------------------------------
    def on_event(
        self,
        desc: Event[Any],
        *,
        durable: str,
        max_deliver: int = 5,
        ack_wait_s: float = 30.0,
        batch_size: int = 1,
        deliver_new_only: bool = False,
        give_up: Callable[[Any, BaseException, Ctx], Awaitable[None]] | None = None,
    ) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
        """A durable pull consumer. Failure → redelivery after a growing delay; after `max_deliver`
        attempts `give_up` records the terminal state and the message is terminated (never stuck)."""

        def register(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            async def subscriber(msg: NatsMessage) -> None:
                raw = msg.raw_message
                attempt = raw.metadata.num_delivered if raw.metadata else 1
                watch = _OverdueWatch(self.name, desc.subject, durable, attempt, ack_wait_s, raw.in_progress)
                ctx = Ctx(
                    request_id=request_id_var.get() or new_request_id(),
                    headers=dict(msg.headers or {}),
                    attempt=attempt,
                    subject=raw.subject,
                    stream_seq=raw.metadata.sequence.stream if raw.metadata else 0,
                    heartbeat=watch.heartbeat,
                )
                try:
                    event = desc.model.model_validate_json(msg.body)
                except ValidationError as err:
                    log_fields(
                        log,
                        logging.ERROR,
                        "malformed event dropped",
                        subject=raw.subject,
                        errors=validation_details(err),
                    )
                    await raw.term()
                    metrics.observe_event(self.name, desc.subject, "malformed")
                    return
                started = time.perf_counter()
                try:
                    with watch:
                        await handler(event, ctx)
                except Exception as exc:
                    took = time.perf_counter() - started
                    if attempt >= max_deliver:
                        metrics.observe_event(self.name, desc.subject, "gave_up", took)
                        log_fields(
                            log,
                            logging.ERROR,
                            "event failed for the last time",
                            subject=raw.subject,
                            attempt=attempt,
                            error=repr(exc),
                        )
                        if give_up:
                            try:
                                await give_up(event, exc, ctx)
                            except Exception:
                                log.exception("give-up handler failed; leaving the message for redelivery")
                                await raw.nak(delay=RETRY_DELAYS_S[-1])
                                return
                        await raw.term()
                    else:
                        delay = RETRY_DELAYS_S[min(attempt - 1, len(RETRY_DELAYS_S) - 1)]
                        log_fields(
                            log,
                            logging.WARNING,
                            "event failed; will retry",
                            subject=raw.subject,
                            attempt=attempt,
                            retry_in_s=delay,
                            error=repr(exc),
                        )
                        await raw.nak(delay=delay)
                        metrics.observe_event(self.name, desc.subject, "retry", took)
                    return
                await raw.ack()
                metrics.observe_event(self.name, desc.subject, "ok", time.perf_counter() - started)

            subscriber.__name__ = f"on_{durable}"
            self.durables.append((desc.stream, durable))
            self.broker.subscriber(
                desc.subject,
                stream=JStream(desc.stream, declare=False),
                durable=durable,
                pull_sub=PullSub(batch_size=batch_size, timeout=5.0),
                inbox_prefix=self.pull_inbox_prefix,
                config=ConsumerConfig(
                    durable_name=durable,
                    max_deliver=max_deliver + 1,  # one spare so `give_up` always runs on our side
                    ack_wait=ack_wait_s,
                    deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
                    filter_subject=desc.subject,
                ),
                ack_policy=AckPolicy.MANUAL,
                title=desc.subject,
            )(subscriber)
            return handler

        return register

    async def publish_raw(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        """Publish a stored event body as it is (the outbox relay) and wait for the stream's ack."""
        await jetstream_publisher(self.js)(subject, body, headers)

    async def publish(
        self,
        desc: Event[Any],
        event: BaseModel,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish a domain event to JetStream and wait for the stream's ack (dedupe by `msg_id`)."""
        if not isinstance(event, desc.model):
            raise TypeError(f"{desc.subject} carries {desc.model.__name__}")
        hdrs = {Header.REQUEST_ID: request_id_var.get() or new_request_id(), **(headers or {})}
        if msg_id:
            hdrs[Header.MSG_ID] = msg_id
        await self.publish_raw(desc.subject, event.model_dump_json().encode(), hdrs)


class _OverdueWatch:
    """Says when an event handler still holds its message, with no heartbeat, past the consumer's ack wait:
    JetStream redelivers the message meanwhile, and a handler that never ends stops its consumer in this
    process (one message at a time) — CI once lost a whole stage that way to an object read with no timeout.
    Logged and counted (`atrium_events_overdue_total`) once per ack wait it stays overdue; never cancelled
    (a cancelled transaction or upload midway is worse than a late one)."""

    def __init__(
        self,
        service: str,
        subject: str,
        durable: str,
        attempt: int,
        ack_wait_s: float,
        in_progress: Callable[[], Awaitable[None]],
    ):
        self.service, self.subject, self.durable, self.attempt = service, subject, durable, attempt
        self.ack_wait_s = ack_wait_s
        self._in_progress = in_progress
        self._started = self._last_beat = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    async def heartbeat(self) -> None:
        self._last_beat = time.monotonic()
        await self._in_progress()

    def __enter__(self) -> _OverdueWatch:
        self._timer = asyncio.get_running_loop().call_later(self.ack_wait_s, self._check)
        return self

    def __exit__(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        quiet_s = time.monotonic() - self._last_beat
        if quiet_s >= self.ack_wait_s:
            metrics.EVENTS_OVERDUE.labels(self.service, self.subject).inc()
            log_fields(
                log,
                logging.WARNING,
                "event handler still running past its ack wait with no heartbeat; the message is redelivered",
                subject=self.subject,
                durable=self.durable,
                attempt=self.attempt,
                running_s=round(time.monotonic() - self._started, 1),
                ack_wait_s=self.ack_wait_s,
            )
            quiet_s = 0.0
        self._timer = asyncio.get_running_loop().call_later(self.ack_wait_s - quiet_s, self._check)
