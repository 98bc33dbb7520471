"""`/api/v1/admin/system`: the admin's System page: which services answer, the documents pipeline's queues
and documents per status, storage used. The documents service checks the admin role."""

from __future__ import annotations

from fastapi import APIRouter, Request

from contracts import Empty
from contracts.docs_api import SYSTEM_STATUS, SystemStatus

from ..bus import Call
from ..errors import errors
from ..transport import Token
from .health import ServiceHealth, services_health

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 403))


class SystemReport(SystemStatus):
    services: dict[str, ServiceHealth]


@router.get(
    "/system", response_model=SystemReport, summary="Services up, queues, documents per status, storage"
)
async def system(request: Request, call: Call, token: Token) -> SystemReport:
    status: SystemStatus = await call(SYSTEM_STATUS, Empty(), token=token)  # refuses non-admins first
    return SystemReport(**status.model_dump(), services=await services_health(request))
