"""Each provider through its real client library against a local server that speaks its API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from contracts.documents import PageText
from services.extraction.ai.budget import cut_to_budget
from services.extraction.ai.handlers import AnalysisFailed, extract_fields
from services.extraction.ai.providers import ProviderConfig, ProviderError, build_provider
from services.extraction.ai.providers.base import with_retries
from tests.fakes_llm.helpers import INVOICE_PAGE
from tests.fakes_llm.server import FakeLLM

API_KEY = "sk-test-0123456789abcdefWXYZ"
INVOICE = INVOICE_PAGE + "IBAN: DE89 3704 0044 0532 0130 00\n"
PROVIDERS = ["anthropic", "ollama", "openai_compatible"]
PATHS = {"anthropic": "/v1/messages", "ollama": "/api/chat", "openai_compatible": "/v1/chat/completions"}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(api_key=API_KEY, slow_s=3.0).start()
    yield server
    await server.stop()


def config_for(name: str, fake: FakeLLM, **kw: object) -> ProviderConfig:
    base = fake.base_url + "/v1" if name == "openai_compatible" else fake.base_url
    params = {
        "name": name,
        "model": "fake-model-1",
        "base_url": base,
        "api_key": API_KEY,
        "timeout_s": 2.0,
        "backoff_s": 0.05,
        "allow_local_servers": True,  # the fake listens on 127.0.0.1 (tests/security/test_ai_settings.py)
        **kw,
    }
    return ProviderConfig(**params)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_fields_through_the_real_client(name: str, fake: FakeLLM) -> None:
    outcome = await extract_fields(build_provider(config_for(name, fake)), INVOICE, "Be precise.")
    f = outcome.fields
    assert f.invoice_number == "INV-2091827" and f.total_amount == Decimal("200715.28")
    assert f.currency == "USD" and str(f.document_date) == "2024-03-09" and f.iban == "DE89370400440532013000"
    assert (
        outcome.usage.tokens_in and outcome.usage.tokens_out == 42 and outcome.usage.model == "fake-model-1"
    )
    assert outcome.usage.latency_ms > 0
    (seen,) = fake.hits(PATHS[name])
    # The structured-output protocol of each API is used, with the fields schema.
    if name == "anthropic":
        assert seen.body["tool_choice"] == {"type": "tool", "name": seen.body["tools"][0]["name"]}
        assert "invoice_number" in seen.body["tools"][0]["input_schema"]["properties"]
        assert "Be precise." in seen.body["system"]
    elif name == "ollama":
        assert "invoice_number" in seen.body["format"]["properties"]
    else:
        assert seen.body["response_format"]["json_schema"]["schema"]["properties"]["total_amount"]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_429_and_500_are_retried(name: str, fake: FakeLLM) -> None:
    fake.queue("429", "500")
    outcome = await extract_fields(build_provider(config_for(name, fake)), INVOICE, "")
    assert outcome.fields.invoice_number == "INV-2091827"
    assert len(fake.hits(PATHS[name])) == 3 and outcome.usage.attempts == 3


@pytest.mark.parametrize("name", PROVIDERS)
async def test_persistent_5xx_fails_as_provider_error_after_the_retries(name: str, fake: FakeLLM) -> None:
    fake.queue("500", "500", "500", "500")
    with pytest.raises(AnalysisFailed) as exc:
        await extract_fields(build_provider(config_for(name, fake, max_attempts=3)), INVOICE, "")
    assert exc.value.reason == "provider_error" and not exc.value.final  # the event is redelivered later
    assert "server error (HTTP 500)" in exc.value.message
    assert len(fake.hits(PATHS[name])) == 3


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_slow_provider_times_out(name: str, fake: FakeLLM) -> None:
    fake.queue("slow")
    with pytest.raises(AnalysisFailed) as exc:
        await extract_fields(build_provider(config_for(name, fake, timeout_s=0.5)), INVOICE, "")
    assert exc.value.reason == "timeout" and "0.5 s" in exc.value.message


@pytest.mark.parametrize("name", PROVIDERS)
async def test_malformed_answer_is_retried_once_with_the_errors(name: str, fake: FakeLLM) -> None:
    fake.queue("not_json")
    outcome = await extract_fields(build_provider(config_for(name, fake)), INVOICE, "Use EUR.")
    assert outcome.fields.invoice_number == "INV-2091827"
    first, second = fake.hits(PATHS[name])
    prompt = second.body["system"] if name == "anthropic" else second.body["messages"][0]["content"]
    assert "previous answer was rejected" in prompt and "Use EUR." in prompt
    assert "previous answer" not in str(first.body)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_schema_violations_twice_fail_as_invalid_output(name: str, fake: FakeLLM) -> None:
    fake.queue("wrong_fields", "wrong_fields")
    with pytest.raises(AnalysisFailed) as exc:
        await extract_fields(build_provider(config_for(name, fake)), INVOICE, "")
    assert exc.value.reason == "invalid_output" and exc.value.final
    assert "document_type" in exc.value.message and "colour" in exc.value.message
    second = fake.hits(PATHS[name])[1]
    assert "colour" in str(second.body)  # the validation errors were fed back


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_body_that_is_not_json_is_a_provider_error(name: str, fake: FakeLLM) -> None:
    fake.queue("broken_body")
    with pytest.raises(AnalysisFailed) as exc:
        await extract_fields(build_provider(config_for(name, fake)), INVOICE, "")
    assert exc.value.reason == "provider_error" and "not a valid API response" in exc.value.message


@pytest.mark.parametrize("name", PROVIDERS)
async def test_wrong_key_is_reported_in_plain_words(name: str, fake: FakeLLM) -> None:
    provider = build_provider(config_for(name, fake, api_key="sk-wrong-key-000000"))
    with pytest.raises(ProviderError) as exc:
        await provider.ping()
    assert exc.value.status == 401 and "refused the credentials" in exc.value.message
    assert "sk-wrong-key" not in exc.value.message


@pytest.mark.parametrize("name", PROVIDERS)
async def test_ping_reports_the_model(name: str, fake: FakeLLM) -> None:
    assert await build_provider(config_for(name, fake)).ping() == "fake-model-1"


async def test_unreachable_server_is_a_retryable_provider_error() -> None:
    from infra.embedded import free_port

    config = ProviderConfig(
        name="openai_compatible",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        timeout_s=1.0,
        max_attempts=2,
        backoff_s=0.01,
        allow_local_servers=True,
    )
    with pytest.raises(AnalysisFailed) as exc:
        await extract_fields(build_provider(config), INVOICE, "")
    assert exc.value.reason == "provider_error" and "Cannot reach" in exc.value.message


async def test_anthropic_needs_a_key() -> None:
    with pytest.raises(ProviderError, match="API key"):
        build_provider(ProviderConfig(name="anthropic"))


async def test_retry_after_is_respected_and_backoff_grows() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ProviderError("429", retryable=True, retry_after_s=7.0)
        if calls < 4:
            raise ProviderError("500", retryable=True)
        return "done"

    result, tries = await with_retries(ProviderConfig(name="x", max_attempts=4, backoff_s=0.5), flaky, sleep)
    assert result == "done" and tries == 4
    assert slept[0] >= 7.0 and 1.0 <= slept[1] <= 1.25 and 2.0 <= slept[2] <= 2.5


async def test_concurrency_is_limited_per_provider(fake: FakeLLM) -> None:
    import asyncio

    fake.slow_s = 0.3
    fake.queue(*["slow"] * 4)
    provider = build_provider(
        config_for("ollama", fake, concurrency=2, timeout_s=5.0, base_url=fake.base_url + "/")
    )
    in_flight = 0
    peak = 0
    original = fake._next

    async def counting(analysis: bool) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await original(analysis)
        finally:
            in_flight -= 1

    fake._next = counting  # type: ignore[method-assign]
    await asyncio.gather(*(provider.analyze(INVOICE, "", {"type": "object"}) for _ in range(4)))
    assert peak == 2 and len(fake.hits("/api/chat")) == 4


def test_long_documents_keep_first_pages_and_totals() -> None:
    pages = [PageText(number=i, text=f"Line items page {i}\n" + "x" * 1000) for i in range(1, 51)]
    pages[41] = PageText(number=42, text="Gesamtbetrag: 1.234,56 EUR\n" + "y" * 1000)
    text = cut_to_budget(pages, 10_000)
    assert len(text) <= 10_000
    assert "--- page 1 ---" in text and "--- page 2 ---" in text and "Gesamtbetrag" in text
    assert "--- page 30 ---" not in text and "omitted" in text
    assert text.index("--- page 1 ---") < text.index("--- page 42 ---")
    assert cut_to_budget(pages[:3], 10_000).count("--- page") == 3


@pytest.mark.parametrize("name", ["anthropic", "openai_compatible"])
async def test_retry_after_header_reaches_the_retry_policy(name: str, fake: FakeLLM) -> None:
    fake.retry_after_s = 3
    fake.queue("429")
    with pytest.raises(ProviderError) as exc:
        await build_provider(config_for(name, fake, max_attempts=1)).ping()
    assert exc.value.status == 429 and exc.value.retryable and exc.value.retry_after_s == 3.0


async def test_the_worker_gives_up_before_jetstream_would_redeliver(fake: FakeLLM) -> None:
    """The whole analysis has a deadline below the consumer's ack wait: a failure is published, not a twin run."""
    import uuid
    from datetime import UTC, datetime

    from contracts.documents import DocumentExtracted, DocumentsSettingsStored, ExtractionResult, PdfMetadata
    from services.docs.settings_store import SettingsStore
    from services.extraction.ai.handlers import AiDeps, ProviderCache, analyze_document
    from services.kit.context import Ctx

    fake.slow_s = 5.0
    fake.queue("slow")
    store = SettingsStore(None, "secret")
    store.current = DocumentsSettingsStored(
        provider="ollama",
        base_url=fake.base_url,
        request_timeout_s=30,
        api_key_ciphertext=store.box.encrypt(API_KEY),
    )
    doc, run, owner = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    result = ExtractionResult(
        document_id=doc,
        run_id=run,
        page_count=1,
        pages=[PageText(number=1, text=INVOICE)],
        metadata=PdfMetadata(),
    )
    published: list[object] = []

    async def keep(*args: object) -> None:
        published.append(args[-1])

    async def load(_: str) -> ExtractionResult:
        return result

    deps = AiDeps(
        settings=store,
        load_result=load,
        publish_processing=keep,
        publish_analyzed=keep,
        publish_failed=keep,
        publish_progress=keep,
        worker="test",
        max_deliver=4,
        providers=ProviderCache(),
        deadline_s=0.5,
        allow_local_servers=True,  # the fake listens on 127.0.0.1
    )
    now = datetime.now(UTC)
    event = DocumentExtracted(
        document_id=doc,
        owner_id=owner,
        run_id=run,
        page_count=1,
        needs_ocr=False,
        chars=len(INVOICE),
        table_count=0,
        metadata=PdfMetadata(),
        result_object="x",
        engine="t",
        worker="t",
        attempt=1,
        started_at=now,
        finished_at=now,
    )
    with pytest.raises(AnalysisFailed):
        await analyze_document(event, Ctx(request_id="t", attempt=1), deps)
    failed = published[-1]
    assert getattr(failed, "reason", None) == "timeout" and getattr(failed, "final", None) is False
    # On the last attempt the same failure is final and nothing is raised (no redelivery).
    fake.queue("slow")
    await analyze_document(event, Ctx(request_id="t", attempt=4), deps)
    assert getattr(published[-1], "final", None) is True
    await deps.providers.close()
