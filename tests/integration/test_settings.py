"""The Documents settings over HTTP: read, PATCH, the API key encrypted and masked, the provider test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from contracts.documents import SETTINGS_BUCKET, SETTINGS_KEY, DocumentsSettingsBase
from services.docs.settings_store import SettingsStore
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS, PLATFORM_SECRET
from tests.fakes_llm.server import FakeLLM

API_KEY = "sk-ant-settings-test-0123456789-LAST"
URL = "/apps/documents/settings"


@pytest_asyncio.fixture
async def admin(stack: Stack, http: httpx.AsyncClient, new_admin: AppUser) -> AsyncIterator[AppUser]:
    yield new_admin
    # Back to the shipped defaults, all of them: later tests of this stack share these settings.
    defaults = DocumentsSettingsBase().model_dump(mode="json")  # quotas as null: no limit
    r = await http.patch(URL, json={**defaults, **BUILTIN_DEFAULTS}, headers=new_admin.headers)
    assert r.status_code == 200, r.text


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(api_key=API_KEY, model="claude-fake-7").start()
    yield server
    await server.stop()


async def test_read_and_patch(http: httpx.AsyncClient, admin: AppUser) -> None:
    r = await http.get(URL, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {
        "provider",
        "model",
        "base_url",
        "prompt_instructions",
        "request_timeout_s",
        "max_upload_mb",
        "duplicate_policy",
        "ai_may_create_categories",
        "api_key_set",
        "api_key_last4",
    } <= set(body)
    assert "api_key" not in body and "api_key_ciphertext" not in body
    r = await http.patch(
        URL,
        json={"model": "llama3.1:8b", "max_upload_mb": 20, "ai_may_create_categories": True},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "llama3.1:8b" and r.json()["max_upload_mb"] == 20
    assert r.json()["ai_may_create_categories"] is True
    assert r.json()["provider"] == body["provider"]  # PATCH: what was not sent stays
    r = await http.get(URL, headers=admin.headers)
    assert r.json()["model"] == "llama3.1:8b"


async def test_a_quota_can_be_set_and_removed(http: httpx.AsyncClient, admin: AppUser) -> None:
    r = await http.patch(
        URL, json={"quota_documents_per_user": 500, "quota_storage_mb_per_user": 2048}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["quota_documents_per_user"], r.json()["quota_storage_mb_per_user"]) == (500, 2048)
    r = await http.patch(URL, json={"quota_documents_per_user": None, "model": None}, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = (await http.get(URL, headers=admin.headers)).json()
    assert body["quota_documents_per_user"] is None  # removed: no limit
    assert body["quota_storage_mb_per_user"] == 2048  # not sent: unchanged
    assert body["model"] == r.json()["model"]  # null for a field without "no value": unchanged
    r = await http.patch(URL, json={"quota_storage_mb_per_user": 0}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "quota_storage_mb_per_user"


async def test_invalid_values_are_422_with_fields(http: httpx.AsyncClient, admin: AppUser) -> None:
    r = await http.patch(URL, json={"request_timeout_s": -1, "provider": "skynet"}, headers=admin.headers)
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"request_timeout_s", "provider"} <= fields


async def test_api_key_is_encrypted_at_rest_and_only_its_last_four_shown(
    stack: Stack, http: httpx.AsyncClient, admin: AppUser
) -> None:
    r = await http.patch(URL, json={"provider": "anthropic", "api_key": API_KEY}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["api_key_set"] is True and r.json()["api_key_last4"] == "LAST"
    assert API_KEY not in r.text and API_KEY[:-4] not in r.text
    r = await http.get(URL, headers=admin.headers)
    assert r.json()["api_key_set"] is True and API_KEY not in r.text
    # At rest: ciphertext only; it opens with the platform secret and with nothing else.
    raw = (await (await stack.nc.jetstream().key_value(SETTINGS_BUCKET)).get(SETTINGS_KEY)).value
    assert API_KEY.encode() not in raw and b"api_key_ciphertext" in raw
    store = SettingsStore(stack.nc.jetstream(), PLATFORM_SECRET)
    await store.start()
    try:
        assert store.api_key() == API_KEY
        assert SettingsStore(None, "another-secret-entirely").api_key(store.current) == ""
    finally:
        await store.stop()
    # Changing something else keeps the key; an empty key clears it.
    r = await http.patch(URL, json={"model": "claude-fake-7"}, headers=admin.headers)
    assert r.json()["api_key_set"] is True
    r = await http.patch(URL, json={"api_key": ""}, headers=admin.headers)
    assert r.json()["api_key_set"] is False and r.json()["api_key_last4"] == ""


async def test_provider_test_reports_model_and_latency(
    http: httpx.AsyncClient, admin: AppUser, fake: FakeLLM
) -> None:
    r = await http.patch(
        URL,
        json={
            "provider": "anthropic",
            "base_url": fake.base_url,
            "model": "claude-fake-7",
            "api_key": API_KEY,
        },
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    r = await http.post(URL + "/test", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["provider"] == "anthropic" and body["model"] == "claude-fake-7"
    assert body["latency_ms"] > 0 and "claude-fake-7" in body["message"]
    (ping,) = fake.hits("/v1/messages")
    assert ping.body["max_tokens"] == 1  # a tiny request


async def test_provider_test_explains_failures(
    http: httpx.AsyncClient, admin: AppUser, fake: FakeLLM
) -> None:
    r = await http.post(
        URL + "/test",
        json={"provider": "anthropic", "base_url": fake.base_url, "api_key": "sk-not-the-right-one"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.json()["ok"] is False
    assert "refused the credentials" in r.json()["message"] and "sk-not-the-right-one" not in r.text
    r = await http.post(
        URL + "/test",
        json={"provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
        headers=admin.headers,
    )
    assert r.json()["ok"] is False and "Cannot reach" in r.json()["message"]
    fake.queue("500")
    r = await http.post(
        URL + "/test",
        json={"provider": "ollama", "base_url": fake.base_url, "api_key": API_KEY},
        headers=admin.headers,
    )
    assert r.json()["ok"] is False and "server error (HTTP 500)" in r.json()["message"]


async def test_builtin_needs_no_configuration(http: httpx.AsyncClient, admin: AppUser) -> None:
    r = await http.post(URL + "/test", json={"provider": "builtin"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["model"] == "builtin-rules-1"


async def test_a_fresh_install_runs_builtin_without_configuration(stack: Stack) -> None:
    store = SettingsStore(
        stack.nc.jetstream(), PLATFORM_SECRET, bucket=f"settings_fresh_{uuid.uuid4().hex[:8]}"
    )
    await store.start()
    try:
        assert store.current.provider == "builtin" and store.kv_revision == 0
        assert store.public().api_key_set is False and store.api_key() == ""
    finally:
        await store.stop()
        await stack.nc.jetstream().delete_key_value(store.bucket)
