"""`/api/v1/apps`: the apps the caller may open (what the Apps page shows)."""

from __future__ import annotations

from fastapi import APIRouter

from contracts import Empty
from contracts.permissions import MY_APPS, AppList

from ..bus import Call
from ..errors import errors
from ..transport import Token

router = APIRouter(prefix="/apps", tags=["apps"], responses=errors(401))


@router.get("", response_model=AppList, summary="My granted, available apps")
async def my_apps(call: Call, token: Token) -> AppList:
    return await call(MY_APPS, Empty(), token=token)
