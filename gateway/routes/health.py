from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts import REGISTRY, AtriumError
from infra import catalog
from services.kit import client

router = APIRouter(tags=["health"])


@router.get("/health", summary="Green only when NATS, Postgres and every service answer")
async def health(request: Request) -> JSONResponse:
    bus = request.app.state.bus
    parts: dict[str, Any] = {"nats": "ok" if bus.connected else "down"}
    expected = request.app.state.settings.expected_services or tuple(s.name for s in catalog.SERVICES)
    health_rpcs = [REGISTRY.rpcs[f"{name}.health"] for name in expected]

    async def probe(desc) -> tuple[str, Any]:  # type: ignore[no-untyped-def]
        if not bus.connected:
            return desc.service, {"status": "down", "error": "bus unreachable"}
        try:
            rep = await client.call(bus.nc, desc, {}, timeout=2.0)
            return desc.service, {"status": rep.status, "checks": rep.checks, "uptime_s": rep.uptime_s}
        except AtriumError as exc:
            return desc.service, {"status": "down", "error": exc.message}

    results = await asyncio.gather(*(probe(d) for d in health_rpcs))
    services = dict(results)
    postgres = "ok"
    for svc in services.values():
        pg = (svc.get("checks") or {}).get("postgres")
        if pg is not None and pg != "ok":
            postgres = pg
    parts["postgres"] = (
        postgres if any("postgres" in (s.get("checks") or {}) for s in services.values()) else "unknown"
    )
    ok = (
        parts["nats"] == "ok"
        and parts["postgres"] == "ok"
        and all(s["status"] == "ok" for s in services.values())
    )
    body = {"status": "ok" if ok else "degraded", **parts, "services": services}
    return JSONResponse(body, status_code=200 if ok else 503)
