"""AI worker subjects: the Documents app settings (the ai service owns them) and a provider test.

The settings models themselves live in `contracts.documents` (`DocumentsSettings*`), next to the
KV bucket they are stored in; every reply is `DocumentsSettingsPublic`, which shows whether an API
key is set and its last four characters, never the key.
"""

from __future__ import annotations

from pydantic import Field

from .base import Contract, Empty, Rpc, Text, UrlText, WireSecret
from .documents import DocumentsSettingsPublic, DocumentsSettingsUpdate, ProviderName


class ProviderTest(Contract):
    """Try the saved provider, or — with any of these set — unsaved values over the saved ones."""

    provider: ProviderName | None = None
    model: Text | None = Field(default=None, max_length=200)
    base_url: UrlText | None = Field(default=None, max_length=500)
    api_key: WireSecret | None = None
    request_timeout_s: float | None = Field(default=None, gt=0, le=120)


class ProviderTestResult(Contract):
    ok: bool
    provider: ProviderName
    model: str = ""
    latency_ms: float = 0.0
    message: str = ""


AI_SETTINGS_GET = Rpc(
    "ai.settings.get",
    Empty,
    DocumentsSettingsPublic,
    access="admin",
    summary="The Documents app settings (API key masked)",
)
AI_SETTINGS_UPDATE = Rpc(
    "ai.settings.update",
    DocumentsSettingsUpdate,
    DocumentsSettingsPublic,
    access="admin",
    summary="Change the Documents app settings (PATCH semantics)",
)
AI_SETTINGS_TEST = Rpc(
    "ai.settings.test",
    ProviderTest,
    ProviderTestResult,
    access="admin",
    summary="Send the AI provider a tiny request and report latency, model or its error",
)
