"""The service runtime: a FastStream NatsBroker wired to the contracts.

`Service.rpc(descriptor)` turns a plain handler `async (command, ctx) -> reply` into a queue-group
subscriber that verifies the caller, validates the request and always answers with an envelope.
`Service.on_event(descriptor, durable=…)` turns `async (event, ctx) -> None` into a durable
JetStream pull consumer that acks on success and redelivers with a delay on failure.
Transport code lives here; handlers stay free of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
from faststream.middlewares import AckPolicy, BaseMiddleware
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsBroker, NatsResponse, PullSub
from faststream.nats.annotations import NatsMessage
from faststream.nats.security import NatsUserPassword
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from pydantic import BaseModel, ValidationError

from contracts import (
    REGISTRY,
    AtriumError,
    Empty,
    Envelope,
    Forbidden,
    Header,
    HealthReply,
    Internal,
    Invalid,
    Unauthenticated,
    health_rpc,
)
from contracts.base import Event, Rpc, Stream

from .config import ServiceSettings, nats_servers
from .logging import log_fields, request_id_var
from .security import Actor, TokenVerifier

log = logging.getLogger("atrium.bus")

RETRY_DELAYS_S = (2.0, 5.0, 15.0, 30.0, 60.0)


def new_request_id() -> str:
    return uuid.uuid4().hex


def validation_details(err: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors without the submitted values (they may be passwords)."""
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_model(model: type[BaseModel], body: bytes | str | None) -> Any:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise Invalid("The message body is not valid JSON.", validation_details(err)) from None
        raise Invalid(
            f"The request does not match {model.__name__}: fix the listed fields.", validation_details(err)
        ) from None


class RequestContextMiddleware(BaseMiddleware):
    """Carries `x-request-id` from every consumed message into logs and every message published while handling it."""

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


class ErrorEnvelopeMiddleware(BaseMiddleware):
    """Last line of defence: an exception that escapes anything on a request becomes an error reply.

    Without it FastStream sends no reply and the caller waits for its timeout.
    """

    async def consume_scope(self, call_next, msg):  # type: ignore[no-untyped-def]
        try:
            return await call_next(msg)
        except Exception as exc:
            if not getattr(msg, "reply_to", None) or _is_jetstream(msg):
                raise
            err = (
                exc
                if isinstance(exc, AtriumError)
                else Internal(
                    f"The service failed while handling this request (request id {request_id_var.get()})."
                )
            )
            if not isinstance(exc, AtriumError):
                log.exception(
                    "unhandled error on %s", getattr(msg, "raw_message", None) and msg.raw_message.subject
                )
            return NatsResponse(
                Envelope(ok=False, error=err.to_body()).model_dump_json(),
                headers={Header.REQUEST_ID: request_id_var.get()},
            )


def _is_jetstream(msg: Any) -> bool:
    raw = getattr(msg, "raw_message", None)
    return bool(raw is not None and getattr(raw, "reply", "").startswith("$JS.ACK"))


@dataclass
class Ctx:
    """What a handler knows about the message besides its body."""

    request_id: str
    actor: Actor | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    subject: str = ""
    stream_seq: int = 0  # JetStream events: the message's stream sequence (same on every redelivery)
    # JetStream events: tells the server the handler is still working, so `ack_wait` does not expire
    heartbeat: Callable[[], Awaitable[None]] | None = None

    @property
    def client_ip(self) -> str:
        return self.headers.get(Header.CLIENT_IP, "")

    @property
    def user_agent(self) -> str:
        return self.headers.get(Header.USER_AGENT, "")

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise Unauthenticated("Sign in first: this request needs a valid access token.")
        return self.actor


def _quiet_logger(name: str) -> logging.Logger:
    """FastStream logs every message at INFO; our own `rpc` line says more, so keep its warnings only."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return logger


HealthCheck = Callable[[], Awaitable[str]]


class Service:
    """One microservice: its broker, its subscribers, its start-up and shutdown."""

    def __init__(
        self, settings: ServiceSettings, *, streams: Sequence[Stream] = (), verify_tokens: bool = True
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
            middlewares=[ErrorEnvelopeMiddleware, RequestContextMiddleware],
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=3,
            logger=_quiet_logger(f"atrium.{self.name}.faststream"),
        )
        self.verifier: TokenVerifier | None = TokenVerifier(self) if verify_tokens else None
        self.health_checks: dict[str, HealthCheck] = {}
        self.on_startup: list[Callable[[], Awaitable[None]]] = []
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []
        self.started_at = time.monotonic()
        self.rpc(health_rpc(self.name))(self._health)

    # ---- connections -------------------------------------------------------------------------
    @property
    def nc(self) -> nats.NATS:
        return self.broker.config.connection_state.connection  # type: ignore[no-any-return]

    @property
    def js(self) -> nats.js.JetStreamContext:
        return self.broker.config.connection_state.stream  # type: ignore[no-any-return]

    async def start(self) -> None:
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
        for hook in self.on_startup:
            await hook()
        if self.verifier:
            await self.verifier.start()
        await self.broker.start()
        # The server must know our subscriptions before anyone is told we are up (else: no responders).
        await self.nc.flush(timeout=5)
        log_fields(log, logging.INFO, "service started", service=self.name)

    async def stop(self) -> None:
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

    # ---- request/reply ---------------------------------------------------------------------------
    def rpc(
        self, desc: Rpc[Any, Any]
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def subscriber(msg: NatsMessage) -> NatsResponse:
                headers = dict(msg.headers or {})
                rid = request_id_var.get() or new_request_id()
                started = time.perf_counter()
                try:
                    ctx = Ctx(request_id=rid, headers=headers, subject=desc.subject)
                    ctx.actor = await self.authorize(desc, headers)
                    command = parse_model(desc.request, msg.body)
                    result = await handler(command, ctx)
                    if not isinstance(result, desc.reply):
                        result = desc.reply.model_validate(result)
                    env = Envelope(ok=True, data=result.model_dump(mode="json"))
                except AtriumError as err:
                    env = Envelope(ok=False, error=err.to_body())
                except Exception:
                    log.exception("handler for %s failed", desc.subject)
                    env = Envelope(
                        ok=False,
                        error=Internal(
                            f"The {self.name} service failed while handling this request; "
                            f"it is logged with request id {rid}."
                        ).to_body(),
                    )
                elapsed = (time.perf_counter() - started) * 1000
                if desc.subject != f"{self.name}.health":
                    log_fields(
                        log,
                        logging.INFO if env.ok else logging.WARNING,
                        "rpc",
                        subject=desc.subject,
                        ok=env.ok,
                        code=env.error.code.value if env.error else None,
                        ms=round(elapsed, 1),
                    )
                return NatsResponse(env.model_dump_json(), headers={Header.REQUEST_ID: rid})

            subscriber.__name__ = f"rpc_{desc.subject.replace('.', '_')}"
            self.broker.subscriber(
                desc.subject, queue=desc.service or self.name, title=desc.subject, description=desc.summary
            )(subscriber)
            return handler

        return register

    async def authorize(self, desc: Rpc[Any, Any], headers: dict[str, str]) -> Actor | None:
        raw = headers.get(Header.AUTHORIZATION, "")
        if desc.access == "public":
            if raw and self.verifier:
                try:
                    return await self.verifier.verify(raw)
                except AtriumError:
                    return None
            return None
        if not self.verifier:
            raise Internal(f"{self.name} cannot verify tokens")
        actor = await self.verifier.verify(raw)
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
                ctx = Ctx(
                    request_id=request_id_var.get() or new_request_id(),
                    headers=dict(msg.headers or {}),
                    attempt=attempt,
                    subject=raw.subject,
                    stream_seq=raw.metadata.sequence.stream if raw.metadata else 0,
                    heartbeat=raw.in_progress,
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
                    return
                try:
                    await handler(event, ctx)
                except Exception as exc:
                    if attempt >= max_deliver:
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
                    return
                await raw.ack()

            subscriber.__name__ = f"on_{durable}"
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
        await self.js.publish(desc.subject, event.model_dump_json().encode(), headers=hdrs, timeout=10)


def js_replicas() -> int:
    """Copies of every stream, KV bucket and object store: 1 on one server, 3 in a cluster
    (`ATRIUM_JS_REPLICAS`, see infra/nats/cluster.py)."""
    return max(1, int(os.environ.get("ATRIUM_JS_REPLICAS", "1")))


async def ensure_streams(js: Any, streams: Sequence[Stream]) -> None:
    """Create or update each stream; safe to run from every service at every start."""
    for s in streams:
        cfg = StreamConfig(
            name=s.name,
            subjects=list(s.subjects),
            storage=StorageType.FILE,
            max_age=s.max_age_days * 86400,
            duplicate_window=s.duplicate_window_s,
            description=s.summary or None,
            num_replicas=js_replicas(),
        )
        try:
            await js.stream_info(s.name)
            await js.update_stream(cfg)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except Exception as exc:  # another service won the race
                if "already in use" not in str(exc):
                    raise


async def ensure_kv(js: Any, bucket: str, *, history: int = 1, ttl_s: float | None = None) -> Any:
    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    history=history,
                    ttl=ttl_s,
                    storage=StorageType.FILE,
                    replicas=js_replicas(),
                )
            )
        except Exception:
            return await js.key_value(bucket)


async def ensure_object_store(js: Any, bucket: str) -> Any:
    try:
        return await js.object_store(bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_object_store(
                bucket, ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE, replicas=js_replicas())
            )
        except Exception:
            return await js.object_store(bucket)
