"""`/api/v1/health`: green only when NATS, Postgres and every expected service answer."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import REGISTRY, AtriumError
from infra import catalog
from services.kit import client

router = APIRouter(tags=["health"])


class ServiceHealth(BaseModel):
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, str] | None = None  # when it answered: its own checks, e.g. {"postgres": "ok"}
    uptime_s: float | None = None
    error: str | None = None  # when it did not answer


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    nats: Literal["ok", "down"]
    postgres: str  # "ok", "unknown" (no service reported it) or the failing check's text
    services: dict[str, ServiceHealth]


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Green only when NATS, Postgres and every service answer",
    responses={503: {"model": HealthReport, "description": "Something is down: the report says what."}},
)
async def health(request: Request) -> JSONResponse:
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

    services = dict(await asyncio.gather(*(probe(d) for d in health_rpcs)))
    reported = [s.checks["postgres"] for s in services.values() if s.checks and "postgres" in s.checks]
    postgres = next((pg for pg in reported if pg != "ok"), "ok") if reported else "unknown"
    nats: Literal["ok", "down"] = "ok" if bus.connected else "down"
    ok = nats == "ok" and postgres == "ok" and all(s.status == "ok" for s in services.values())
    report = HealthReport(status="ok" if ok else "degraded", nats=nats, postgres=postgres, services=services)
    body: dict[str, Any] = report.model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=200 if ok else 503)
