"""The AI worker over real NATS: extraction result in the Object Store + DocumentExtracted in, fields out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio

from contracts.documents import DOCUMENT_PROGRESS, DocumentFailed, DocumentProgress, DocumentsSettingsUpdate
from services.docs.settings_store import SettingsStore
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import (
    BUILTIN_DEFAULTS,
    INVOICE_PAGE,
    PLATFORM_SECRET,
    PipelineWatch,
    publish_extracted,
    set_settings,
    wait_for_provider,
)
from tests.fakes_llm.server import FakeLLM

API_KEY = "sk-worker-test-key-9876"


@pytest_asyncio.fixture
async def admin_bus(stack: Stack, new_admin: AppUser) -> AsyncIterator[str]:
    """An admin token for the settings subjects; the settings go back to the builtin defaults afterwards."""
    await set_settings(stack.nc, new_admin.access_token, **BUILTIN_DEFAULTS)
    await wait_for_provider(stack.nc, new_admin.access_token, "builtin")
    yield new_admin.access_token
    await set_settings(stack.nc, new_admin.access_token, **BUILTIN_DEFAULTS)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(api_key=API_KEY).start()
    yield server
    await server.stop()


async def test_builtin_end_to_end(stack: Stack, admin_bus: str) -> None:
    async with PipelineWatch(stack.nc) as watch:
        progress: list[DocumentProgress] = []
        event = await publish_extracted(stack.nc, [INVOICE_PAGE, "Terms and conditions apply."])

        async def on_progress(msg) -> None:  # type: ignore[no-untyped-def]
            progress.append(DocumentProgress.model_validate_json(msg.data))

        sub = await stack.nc.subscribe(
            DOCUMENT_PROGRESS.subject(str(event.owner_id), str(event.document_id)), cb=on_progress
        )
        analyzed = await watch.analyzed(event.document_id)
        await sub.unsubscribe()
    assert analyzed.provider == "builtin" and analyzed.model == "builtin-rules-1"
    assert analyzed.run_id == event.run_id and analyzed.owner_id == event.owner_id
    f = analyzed.fields
    assert f.document_type == "invoice" and f.invoice_number == "INV-2091827"
    assert (
        f.total_amount == Decimal("200715.28")
        and f.currency == "USD"
        and str(f.document_date) == "2024-03-09"
    )
    assert f.sender == "Blue Harbor Supplies Ltd" and f.recipient == "Stark Logistics Inc"
    (processing,) = watch.processing(event.document_id)
    assert processing.stage == "analyze" and processing.attempt == 1
    assert analyzed.started_at <= analyzed.finished_at


async def test_a_settings_change_reaches_the_running_worker(
    stack: Stack, admin_bus: str, fake: FakeLLM
) -> None:
    # Written straight to the KV bucket, as another replica of the ai service would: only the watch
    # can bring it to the running worker.
    other = SettingsStore(stack.nc.jetstream(), PLATFORM_SECRET)
    await other.start()
    try:
        await other.update(
            DocumentsSettingsUpdate(
                provider="openai_compatible",
                base_url=fake.base_url + "/v1",
                model="fake-model-1",
                api_key=API_KEY,
            )
        )
    finally:
        await other.stop()
    await wait_for_provider(stack.nc, admin_bus, "openai_compatible")
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        analyzed = await watch.analyzed(event.document_id)
    assert analyzed.provider == "openai_compatible" and analyzed.model == "fake-model-1"
    assert analyzed.tokens_in and analyzed.tokens_out == 42
    assert analyzed.fields.invoice_number == "INV-2091827"
    (request,) = fake.hits("/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"  # decrypted with the platform secret
    assert "INV-2091827" in request.body["messages"][-1]["content"]

    await set_settings(stack.nc, admin_bus, provider="builtin")
    await wait_for_provider(stack.nc, admin_bus, "builtin")
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        assert (await watch.analyzed(event.document_id)).provider == "builtin"
    assert len(fake.hits("/v1/chat/completions")) == 1


async def test_invalid_output_fails_the_task_with_the_reason(
    stack: Stack, admin_bus: str, fake: FakeLLM
) -> None:
    await set_settings(
        stack.nc,
        admin_bus,
        provider="anthropic",
        base_url=fake.base_url,
        model="fake-model-1",
        api_key=API_KEY,
    )
    fake.queue("wrong_fields", "wrong_fields")
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        failed = await watch.outcome(event.document_id)
    assert isinstance(failed, DocumentFailed)
    assert failed.final and failed.reason == "invalid_output" and failed.stage == "analyze"
    assert "colour" in failed.message
    assert len(fake.hits("/v1/messages")) == 2


async def test_a_provider_outage_is_redelivered_then_succeeds(
    stack: Stack, admin_bus: str, fake: FakeLLM
) -> None:
    await set_settings(
        stack.nc, admin_bus, provider="ollama", base_url=fake.base_url, model="fake-model-1", api_key=API_KEY
    )
    fake.queue("500", "500", "500")  # every in-call retry of the first delivery fails
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        analyzed = await watch.analyzed(event.document_id)
        failures = watch.of(event.document_id, DocumentFailed)
    assert analyzed.provider == "ollama" and analyzed.attempt == 2
    assert [(f.attempt, f.final, f.reason) for f in failures] == [(1, False, "provider_error")]
    assert [p.attempt for p in watch.processing(event.document_id)] == [1, 2]
    assert len(fake.hits("/api/chat")) == 4


async def test_needs_ocr_skips_the_provider(stack: Stack, admin_bus: str, fake: FakeLLM) -> None:
    await set_settings(
        stack.nc, admin_bus, provider="openai_compatible", base_url=fake.base_url + "/v1", api_key=API_KEY
    )
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [""], needs_ocr=True)
        analyzed = await watch.analyzed(event.document_id)
    assert analyzed.model == "skipped:needs_ocr" and analyzed.fields.model_dump(exclude_defaults=True) == {}
    assert fake.requests == []


async def test_a_missing_key_fails_at_once_in_plain_words(stack: Stack, admin_bus: str) -> None:
    await set_settings(stack.nc, admin_bus, provider="anthropic", api_key="")
    async with PipelineWatch(stack.nc) as watch:
        event = await publish_extracted(stack.nc, [INVOICE_PAGE])
        failed = await watch.outcome(event.document_id)
    assert isinstance(failed, DocumentFailed) and failed.final and failed.attempt == 1
    assert failed.reason == "provider_error" and "API key" in failed.message
