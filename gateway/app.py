"""The gateway's FastAPI app factory."""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute

from contracts import Header
from services.kit.logging import log_fields, request_id_var

from . import errors, http_types, web
from .bus import BusClient
from .routes import auth, health
from .settings import GatewaySettings

log = logging.getLogger("atrium.gateway")

API_PREFIX = "/api/v1"
# Every route calls a service over the bus: each may answer these, whatever it does.
BUS_ERRORS = errors.errors(422, 500, 503, 504)


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId (and the web app's generated name) is the route function's name."""
    return route.name


def client_ip(request: Request, trusted: tuple[str, ...]) -> str:
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in trusted:
        candidate = forwarded.split(",")[-1].strip()
        try:
            ipaddress.ip_address(candidate)
            return candidate
        except ValueError:
            pass
    return peer


def create_app(
    settings: GatewaySettings | None = None, *, extra_routers: list[APIRouter] | None = None
) -> FastAPI:
    settings = settings or GatewaySettings.from_env()
    bus = BusClient(settings.rpc_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        await bus.connect(settings.nats_url, settings.nats_login)
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

    @app.middleware("http")
    async def request_context(request: Request, call_next):  # type: ignore[no-untyped-def]
        incoming = request.headers.get(Header.REQUEST_ID, "")
        rid = (
            incoming
            if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum()
            else uuid.uuid4().hex
        )
        request.state.request_id = rid
        request.state.client_ip = client_ip(request, settings.trusted_proxies)
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers[Header.REQUEST_ID] = rid
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
            log_fields(
                log,
                logging.INFO,
                "http",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 1),
                request_id=rid,
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

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
