"""The gateway's FastAPI app factory."""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import Header
from services.kit import metrics
from services.kit.logging import log_fields, request_id_var

from . import errors, http_types, web
from .body_limit import BodyLimit
from .bus import BusClient
from .routes import auth, health
from .settings import NATS_USER, GatewaySettings, Networks

log = logging.getLogger("atrium.gateway")

API_PREFIX = "/api/v1"
# Every route calls a service over the bus: each may answer these, whatever it does.
BUS_ERRORS = errors.errors(422, 500, 503, 504)


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId (and the web app's generated name) is the route function's name."""
    return route.name


def client_ip(peer: str, forwarded: str | None, trusted: Networks) -> str:
    """The caller's address: the peer's, or the last `X-Forwarded-For` hop when the peer is a trusted proxy
    (the proxy appends or sets the address it saw; earlier hops are the client's word and ignored)."""
    if forwarded and trusted.contains(peer):
        candidate = forwarded.split(",")[-1].strip()
        try:
            ipaddress.ip_address(candidate)
            return candidate
        except ValueError:
            pass
    return peer


def request_id(incoming: str) -> str:
    """The caller's `X-Request-Id` when it is a sane token, else a new one."""
    if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum():
        return incoming
    return uuid.uuid4().hex


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
# Sent when the public URL is https (infra/nginx/security_headers.conf sends the same over https).
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


class RequestContext:
    """Per request: the request id (from the caller or new) in `request.state`, the logs and the
    response; the client IP in `request.state`; `Cache-Control: no-store` and one log line for API
    calls; security headers on every response.

    Plain ASGI rather than `@app.middleware("http")`: that one (BaseHTTPMiddleware) runs the app in a
    task of its own and passes the response through memory streams, a cost on every request."""

    def __init__(self, app: ASGIApp, trusted_proxies: Networks, https: bool = False):
        self.app = app
        self.trusted = trusted_proxies
        self.security_headers = (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = request_id(headers.get(Header.REQUEST_ID, ""))
        peer = scope["client"][0] if scope.get("client") else ""
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["client_ip"] = client_ip(peer, headers.get("x-forwarded-for"), self.trusted)
        path: str = scope["path"]
        api = path.startswith("/api/")
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if api:
                    observe_http(scope, message["status"], time.perf_counter() - started)
                message.setdefault("headers", [])
                out = MutableHeaders(scope=message)
                out[Header.REQUEST_ID] = rid
                if api:
                    out.setdefault("Cache-Control", "no-store")
                    log_fields(
                        log,
                        logging.INFO,
                        "http",
                        method=scope["method"],
                        path=path,
                        status=message["status"],
                        ms=round((time.perf_counter() - started) * 1000, 1),
                        request_id=rid,
                    )
                for name, value in self.security_headers:
                    out.setdefault(name, value)
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)


def observe_http(scope: Scope, status: int, seconds: float) -> None:
    """Requests by route template (`/api/v1/documents/{document_id}`), never by raw path: ids would make
    a series per document."""
    # FastAPI keeps the full template (with the router's prefix) in its effective route context; the
    # route itself knows only its own part.
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(effective, "path", None) or getattr(scope.get("route"), "path", None) or "unmatched"
    metrics.HTTP_REQUESTS.labels(NATS_USER, template, scope["method"], str(status)).inc()
    metrics.HTTP_SECONDS.labels(NATS_USER, template, scope["method"]).observe(seconds)


def create_app(
    settings: GatewaySettings | None = None, *, extra_routers: list[APIRouter] | None = None
) -> FastAPI:
    settings = settings or GatewaySettings.from_env()
    bus = BusClient(settings.rpc_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        await bus.connect(settings.nats_url, settings.nats_login)
        metrics.expose(NATS_USER, settings.data_dir)
        metrics.watch_runtime(NATS_USER)
        yield
        await bus.close()

    app = FastAPI(
        title="Atrium API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.bus = bus
    errors.install(app)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(  # outermost: runs first
        RequestContext, trusted_proxies=settings.trusted_proxies, https=settings.secure_cookies
    )

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(health.router)  # answers for itself, never with an error envelope
    api.include_router(auth.router, responses=BUS_ERRORS)
    for r in extra_routers or []:
        api.include_router(r)
    from .routes import discover

    for r in discover():
        api.include_router(r, responses=BUS_ERRORS)
    app.include_router(api)
    for r in root_routers():
        app.include_router(r, responses=BUS_ERRORS)
    web.mount(app, settings.web_dist)
    http_types.install(app)
    return app


def root_routers() -> list[APIRouter]:
    """Routers outside /api/v1 (e.g. /.well-known); modules in gateway/routes expose `root_router`."""
    from .routes import discover_root

    return discover_root()
