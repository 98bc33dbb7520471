"""`/api/v1/health`: green only when NATS, Postgres and every expected service answer.

Everybody learns ok / not ok; what is down and why (service names, error texts, uptimes) only an
administrator's token or a caller from ATRIUM_HEALTH_DETAILS_FROM (the machine itself by default: its
healthchecks and the CLI) sees (issue 13 item 15).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import REGISTRY, AtriumError, Empty
from contracts.auth import ME
from infra import catalog
from services.kit import client

from ..bus import Call
from ..settings import GatewaySettings
from ..transport import OptionalToken

router = APIRouter(tags=["health"])


class ServiceHealth(BaseModel):
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, str] | None = None  # when it answered: its own checks, e.g. {"postgres": "ok"}
    uptime_s: float | None = None
    error: str | None = None  # when it did not answer


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    # The details, for administrators and local operators only:
    nats: Literal["ok", "down"] | None = None
    postgres: str | None = None  # "ok", "unknown" (no service reported it) or the failing check's text
    services: dict[str, ServiceHealth] | None = None


async def shows_details(request: Request, call: Call, token: str | None) -> bool:
    settings: GatewaySettings = request.app.state.settings
    if settings.health_details_from.contains(request.state.client_ip):
        return True
    if not token:
        return False
    try:
        me = await call(ME, Empty(), token=token, timeout=2.0)
    except AtriumError:  # a bad token, or auth down: the public answer
        return False
    return bool(me.role == "admin")


async def services_health(request: Request) -> dict[str, ServiceHealth]:
    """Every expected service's own health, asked at once (also the admin's System page)."""
    bus = request.app.state.bus
    expected = request.app.state.settings.expected_services or tuple(s.name for s in catalog.SERVICES)
    health_rpcs = [REGISTRY.rpcs[f"{name}.health"] for name in expected]

    async def probe(desc) -> tuple[str, ServiceHealth]:  # type: ignore[no-untyped-def]
        if not bus.connected:
            return desc.service, ServiceHealth(status="down", error="bus unreachable")
        try:
            rep = await client.call(bus.nc, desc, {}, timeout=2.0)
            return desc.service, ServiceHealth(status=rep.status, checks=rep.checks, uptime_s=rep.uptime_s)
        except AtriumError as exc:
            return desc.service, ServiceHealth(status="down", error=exc.message)

    return dict(await asyncio.gather(*(probe(d) for d in health_rpcs)))


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Green only when NATS, Postgres and every service answer (the details for administrators)",
    responses={503: {"model": HealthReport, "description": "Something is down: the details say what."}},
)
async def health(request: Request, call: Call, token: OptionalToken) -> JSONResponse:
    bus = request.app.state.bus
    services = await services_health(request)
    reported = [s.checks["postgres"] for s in services.values() if s.checks and "postgres" in s.checks]
    postgres = next((pg for pg in reported if pg != "ok"), "ok") if reported else "unknown"
    nats: Literal["ok", "down"] = "ok" if bus.connected else "down"
    ok = nats == "ok" and postgres == "ok" and all(s.status == "ok" for s in services.values())
    report = HealthReport(status="ok" if ok else "degraded", nats=nats, postgres=postgres, services=services)
    if not await shows_details(request, call, token):
        report = HealthReport(status=report.status)
    body: dict[str, Any] = report.model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=200 if ok else 503)
