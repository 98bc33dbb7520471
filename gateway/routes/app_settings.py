"""`/api/v1/apps/documents/settings`: the Documents app settings (admin only; the ai service checks the role too)."""

from __future__ import annotations

from fastapi import APIRouter

from contracts import Empty
from contracts.ai import (
    AI_SETTINGS_GET,
    AI_SETTINGS_TEST,
    AI_SETTINGS_UPDATE,
    ProviderTest,
    ProviderTestResult,
)
from contracts.documents import DocumentsSettingsPublic, DocumentsSettingsUpdate

from ..bus import Call
from ..errors import errors
from ..transport import Token

router = APIRouter(prefix="/apps/documents/settings", tags=["settings"], responses=errors(401, 403))

# The provider test waits for a model server that may be slow to load a model.
PROVIDER_TEST_TIMEOUT_S = 60.0


@router.get("", response_model=DocumentsSettingsPublic, summary="The Documents app settings (API key masked)")
async def get_settings(call: Call, token: Token) -> DocumentsSettingsPublic:
    return await call(AI_SETTINGS_GET, Empty(), token=token)


@router.patch(
    "",
    response_model=DocumentsSettingsPublic,
    summary='Change some settings; `api_key: ""` clears it',
    responses=errors(409),
)
async def update_settings(body: DocumentsSettingsUpdate, call: Call, token: Token) -> DocumentsSettingsPublic:
    return await call(AI_SETTINGS_UPDATE, body, token=token)


@router.post(
    "/test",
    response_model=ProviderTestResult,
    summary="Send the provider a tiny request: success, latency and model, or its error in plain words",
)
async def test_settings(call: Call, token: Token, body: ProviderTest | None = None) -> ProviderTestResult:
    return await call(AI_SETTINGS_TEST, body or ProviderTest(), token=token, timeout=PROVIDER_TEST_TIMEOUT_S)
