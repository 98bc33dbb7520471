"""The AI worker's use cases: analyse one extracted document, read/change/test the settings.

Failure policy for a run (one `DocumentExtracted`):
- The provider is unreachable, rate limiting, erroring or slow (`provider_error` / `timeout`): a
  non-final `DocumentFailed` is published and the event is redelivered later; on the last attempt
  the failure is final.
- The answer does not fit `ExtractedFields` twice in a row (`invalid_output`), or the settings
  cannot work (no API key, unknown provider — `provider_error`): final at once; another attempt
  would get the same answer.
- The text worker flagged `needs_ocr` (no text layer): there is nothing to read, so no provider is
  called; a `DocumentAnalyzed` with empty fields and model `skipped:needs_ocr` closes the run, and
  the documents service keeps the document's `needs_ocr` status from the extracted event.
Nothing is half-written: fields are published only once they validated as a whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from contracts import Empty, Invalid
from contracts.ai import ProviderTest, ProviderTestResult
from contracts.documents import (
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentFailed,
    DocumentProcessing,
    DocumentProgress,
    DocumentsSettingsPublic,
    DocumentsSettingsStored,
    DocumentsSettingsUpdate,
    ExtractedFields,
    ExtractionResult,
    FailureReason,
    SettingsChanged,
)
from services.docs.settings_store import SettingsStore, moves_the_key, to_public
from services.extraction import metrics as pipeline_metrics
from services.extraction.ocr import tessdata
from services.kit.context import Ctx
from services.kit.logging import log_fields
from services.kit.objects import read_object

from .budget import cut_to_budget
from .providers import (
    MalformedAnswer,
    Provider,
    ProviderConfig,
    ProviderError,
    Usage,
    build_provider,
    check_destination,
)

log = logging.getLogger("atrium.ai")

FIELDS_SCHEMA: dict[str, Any] = ExtractedFields.model_json_schema()
SKIPPED_MODEL = "skipped:needs_ocr"
# What the document's owner reads for a failure of the provider: never its host, base URL or reply (those
# are in the worker's log line and in the admins' "Test connection"), issue 13 item 15.
PUBLIC_FAILURES: dict[str, str] = {
    "provider_error": "The AI provider could not be used. An administrator can check the provider, its "
    "address and API key in the Documents settings (Test connection says what is wrong).",
    "timeout": "The AI provider did not answer in time; the document is tried again, or retry it later.",
}


class AnalysisFailed(Exception):
    def __init__(self, reason: FailureReason, message: str, *, final: bool, usage: Usage | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.final = final
        self.usage = usage


@dataclass
class Outcome:
    fields: ExtractedFields
    usage: Usage


def provider_config(
    settings: DocumentsSettingsStored, api_key: str, allow_local_servers: bool = False
) -> ProviderConfig:
    return ProviderConfig(
        name=settings.provider,
        model=settings.model,
        base_url=settings.base_url,
        api_key=api_key,
        timeout_s=settings.request_timeout_s,
        allow_local_servers=allow_local_servers,
    )


def problems(err: Exception) -> str:
    """What was wrong with an answer, one `field: message` per problem, without the URLs pydantic adds."""
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in err.errors(include_url=False)
        )[:1500]
    return str(err)[:1500]


def feedback(instructions: str, err: Exception) -> str:
    """The instructions again, plus what was wrong with the previous answer, for the one retry."""
    return (
        f"{instructions}\n\nYour previous answer was rejected: {problems(err)}. Answer again with one JSON "
        "object that matches the schema exactly: only the listed fields, null where unknown."
    ).strip()


async def extract_fields(provider: Provider, text: str, instructions: str) -> Outcome:
    """Ask the provider; an answer that does not validate is retried once with the errors fed back."""
    usage = Usage(attempts=0)
    prompt = instructions
    last: Exception | None = None
    for _round in range(2):
        try:
            raw, used = await provider.analyze(text, prompt, FIELDS_SCHEMA)
        except ProviderError as err:
            raise AnalysisFailed(
                "timeout" if err.timeout else "provider_error",
                err.message,
                final=not (err.retryable or err.timeout),
                usage=usage,
            ) from None
        except MalformedAnswer as err:
            last = err
            prompt = feedback(instructions, err)
            continue
        usage = usage.add(used)
        try:
            return Outcome(ExtractedFields.model_validate(raw), usage)
        except ValidationError as err:
            last = err
            prompt = feedback(instructions, err)
    message = (
        f"The {provider.name} model answered twice with output that does not fit the fields schema: "
        f"{problems(last) if last else 'no answer'}"
    )
    raise AnalysisFailed("invalid_output", message, final=True, usage=usage)


# ---- the worker ------------------------------------------------------------------------------------
@dataclass
class AiDeps:
    settings: SettingsStore
    load_result: Callable[[str], Awaitable[ExtractionResult]]
    publish_processing: Callable[[DocumentProcessing], Awaitable[None]]
    publish_analyzed: Callable[[DocumentAnalyzed], Awaitable[None]]
    publish_failed: Callable[[DocumentFailed], Awaitable[None]]
    publish_progress: Callable[[str, str, DocumentProgress], Awaitable[None]]
    worker: str
    max_deliver: int
    providers: ProviderCache
    deadline_s: float = 270.0
    # Whether the documents service replaced the run (services/docs/superseded.py): then no model is asked.
    superseded: Callable[[UUID], Awaitable[bool]] | None = None
    # Model servers on this machine or the local network (ATRIUM_AI_ALLOW_LOCAL_SERVERS; providers/network.py).
    allow_local_servers: bool = False
    # Records a settings change in the audit log (events.docs.settings_changed → the documents service).
    publish_settings_changed: Callable[[SettingsChanged], Awaitable[None]] | None = None


class ProviderCache:
    """One provider object (HTTP client and all) per distinct configuration; a settings change makes a new one."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._provider: Provider | None = None

    async def get(self, config: ProviderConfig) -> Provider:
        key = (config.name, config.model, config.base_url, config.api_key, config.timeout_s)
        if self._provider is None or key != self._key:
            await check_destination(config)  # a refused address is a final failure, in plain words
            old, self._provider, self._key = self._provider, build_provider(config), key
            if old is not None:
                await old.aclose()
        return self._provider

    async def close(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()
            self._provider = self._key = None


def load_text(result: ExtractionResult, budget_chars: int) -> str:
    header = f"PDF title: {result.metadata.title}\n" if result.metadata.title else ""
    return header + cut_to_budget(result.pages, budget_chars)


async def analyze_document(event: DocumentExtracted, ctx: Ctx, deps: AiDeps) -> None:
    if deps.superseded is not None and await deps.superseded(event.run_id):
        log_fields(
            log,
            logging.INFO,
            "run superseded; not analyzed",
            document_id=str(event.document_id),
            run_id=str(event.run_id),
        )
        return
    attempt = ctx.attempt
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    owner, doc = str(event.owner_id), str(event.document_id)
    await deps.publish_processing(
        DocumentProcessing(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            stage="analyze",
            attempt=attempt,
            worker=deps.worker,
            started_at=started,
        )
    )
    settings = deps.settings.current
    if event.needs_ocr:
        await deps.publish_analyzed(
            DocumentAnalyzed(
                document_id=event.document_id,
                owner_id=event.owner_id,
                run_id=event.run_id,
                fields=ExtractedFields(),
                provider="builtin",
                model=SKIPPED_MODEL,
                worker=deps.worker,
                attempt=attempt,
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        )
        return
    await deps.publish_progress(
        owner,
        doc,
        DocumentProgress(
            document_id=event.document_id,
            run_id=event.run_id,
            stage="analyze",
            status="analyzing",
            message=f"Reading the fields with {settings.provider}",
        ),
    )
    try:
        provider = await deps.providers.get(
            provider_config(settings, deps.settings.api_key(settings), deps.allow_local_servers)
        )
        result = await deps.load_result(event.result_object)
        try:
            # Retries and the second round must end before JetStream would redeliver the message.
            async with asyncio.timeout(deps.deadline_s):
                outcome = await extract_fields(
                    provider, load_text(result, provider.budget_chars), settings.prompt_instructions
                )
        except TimeoutError:
            raise AnalysisFailed(
                "timeout",
                f"The analysis took longer than {deps.deadline_s:g} s with "
                f"{settings.provider}; it will be tried again.",
                final=False,
            ) from None
    except (AnalysisFailed, ProviderError) as err:
        failed = (
            err
            if isinstance(err, AnalysisFailed)
            else AnalysisFailed("provider_error", err.message, final=True)
        )
        final = failed.final or attempt >= deps.max_deliver
        log_fields(
            log,
            logging.WARNING,
            "analysis failed",
            document_id=doc,
            reason=failed.reason,
            final=final,
            attempt=attempt,
            provider=settings.provider,
            detail=failed.message,
        )
        pipeline_metrics.AI_ERRORS.labels(settings.provider, failed.reason).inc()
        await deps.publish_failed(
            DocumentFailed(
                document_id=event.document_id,
                owner_id=event.owner_id,
                run_id=event.run_id,
                stage="analyze",
                reason=failed.reason,
                message=PUBLIC_FAILURES.get(failed.reason, failed.message)[:2000],
                attempt=attempt,
                final=final,
                worker=deps.worker,
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        )
        if not final:
            raise  # redelivered after a delay
        return
    await deps.publish_analyzed(
        DocumentAnalyzed(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            fields=outcome.fields,
            provider=settings.provider,
            model=outcome.usage.model or provider.model,
            tokens_in=outcome.usage.tokens_in,
            tokens_out=outcome.usage.tokens_out,
            worker=deps.worker,
            attempt=attempt,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
    )
    log_fields(
        log,
        logging.INFO,
        "document analyzed",
        document_id=doc,
        provider=settings.provider,
        model=outcome.usage.model,
        tokens_in=outcome.usage.tokens_in,
        tokens_out=outcome.usage.tokens_out,
        provider_ms=round(outcome.usage.latency_ms, 1),
        total_ms=round((time.perf_counter() - t0) * 1000, 1),
        provider_calls=outcome.usage.attempts,
    )


async def give_up(event: DocumentExtracted, exc: BaseException, ctx: Ctx, deps: AiDeps) -> None:
    """The last attempt failed with something unexpected (object missing, bus trouble): a final failure."""
    if isinstance(exc, AnalysisFailed):
        return  # already published as final by `analyze_document`
    await deps.publish_failed(
        DocumentFailed(
            document_id=event.document_id,
            owner_id=event.owner_id,
            run_id=event.run_id,
            stage="analyze",
            reason="internal",
            message=f"The AI worker could not process this document: {type(exc).__name__}",
            attempt=ctx.attempt,
            final=True,
            worker=deps.worker,
            finished_at=datetime.now(UTC),
        )
    )


async def read_result(object_store: Any, name: str) -> ExtractionResult:
    """Fetch the extraction result (kit `read_object`: bounded waits, a stalled read started again)."""
    return ExtractionResult.model_validate_json(await read_object(object_store, name))


# ---- settings ----------------------------------------------------------------------------------------
async def ocr_installed(deps: AiDeps) -> tuple[list[str], str]:
    """The OCR languages the text workers have (all of them together) and their engine; before any worker
    announced itself, what is installed where this service runs (one image for every process)."""
    engines = await deps.settings.ocr_engines()
    if engines:
        newest = max(engines, key=lambda e: e.at)
        return sorted({lang for e in engines for lang in e.languages}), newest.engine
    return await asyncio.to_thread(tessdata.languages), ""


async def public_settings(stored: DocumentsSettingsStored, deps: AiDeps) -> DocumentsSettingsPublic:
    installed, engine = await ocr_installed(deps)
    return to_public(stored).model_copy(update={"ocr_languages_installed": installed, "ocr_engine": engine})


async def get_settings(_: Empty, ctx: Ctx, deps: AiDeps) -> DocumentsSettingsPublic:
    return await public_settings(deps.settings.current, deps)


async def update_settings(update: DocumentsSettingsUpdate, ctx: Ctx, deps: AiDeps) -> DocumentsSettingsPublic:
    """Change the settings (PATCH). A new provider or base URL must lead to an allowed address, and needs the
    key again (settings_store.apply_update); OCR languages must be ones the text workers can read; every
    change becomes an audit entry with its actor."""
    actor = ctx.require_actor()
    if update.ocr_languages is not None:
        installed, _ = await ocr_installed(deps)
        missing = [lang for lang in dict.fromkeys(update.ocr_languages) if lang not in installed]
        if missing:
            raise Invalid(
                f"OCR cannot read {', '.join(missing)}: the text workers have no such language pack "
                f"({'; '.join(tessdata.install_hint(lang) for lang in missing)}; then restart the text "
                f"worker). Installed: {', '.join(installed) or 'none'}.",
                [{"field": "ocr_languages", "message": f"not installed: {', '.join(missing)}"}],
            )
    sent = update.model_dump(exclude_unset=True, exclude={"api_key", "ocr_api_key"})
    target = deps.settings.current.model_copy(update={k: v for k, v in sent.items() if v is not None})
    # The AI provider's and the vision OCR's base URLs, each checked when it moves (tesseract goes nowhere).
    ocr = ProviderConfig(
        name=target.ocr_provider, base_url=target.ocr_base_url, allow_local_servers=deps.allow_local_servers
    )
    for key, field, config in (
        ("api_key", "base_url", provider_config(target, "", deps.allow_local_servers)),
        ("ocr_api_key", "ocr_base_url", ocr),
    ):
        if moves_the_key(deps.settings.current, sent, key):
            try:
                await check_destination(config)
            except ProviderError as err:
                raise Invalid(err.message, [{"field": field, "message": err.message}]) from None
    stored = await deps.settings.update(update)
    changed = sorted(update.model_fields_set)
    log_fields(
        log,
        logging.INFO,
        "documents settings changed",
        provider=stored.provider,
        model=stored.model,
        changed=changed,
        revision=stored.revision,
        actor=str(actor.user_id),
    )
    if deps.publish_settings_changed is not None:
        await deps.publish_settings_changed(
            SettingsChanged(
                actor_id=actor.user_id,
                changed=changed,
                provider=stored.provider,
                model=stored.model,
                base_url=stored.base_url,
                revision=stored.revision,
                changed_at=datetime.now(UTC),
                client_ip=ctx.client_ip or None,
            )
        )
    return await public_settings(stored, deps)


async def test_provider(req: ProviderTest, ctx: Ctx, deps: AiDeps) -> ProviderTestResult:
    """A tiny request with the saved settings, or unsaved values over them; the answer is in plain words."""
    store = deps.settings
    saved = store.current
    overrides = req.model_dump(exclude_unset=True, exclude={"api_key"})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    settings = saved.model_copy(update=overrides)
    if "request_timeout_s" not in overrides:
        settings = settings.model_copy(update={"request_timeout_s": min(settings.request_timeout_s, 20.0)})
    # The saved key goes only where it was entered for: another provider or base URL is tried with the key
    # sent along with the test, or with none.
    elsewhere = moves_the_key(saved, overrides)
    if req.api_key is not None:
        api_key = req.api_key.get_secret_value()
    else:
        api_key = "" if elsewhere else store.api_key(saved)
    if saved.api_key_ciphertext and not api_key and req.api_key is None and not elsewhere:
        return ProviderTestResult(
            ok=False,
            provider=settings.provider,
            message=(
                "The stored API key cannot be decrypted (the platform secret changed?); enter the key again."
            ),
        )
    config = dataclasses.replace(
        provider_config(settings, api_key, deps.allow_local_servers), max_attempts=1
    )  # a test should not linger
    started = time.perf_counter()
    try:
        await check_destination(config)
        provider = build_provider(config)
        try:
            model = await provider.ping()
        finally:
            await provider.aclose()
    except ProviderError as err:
        return ProviderTestResult(
            ok=False,
            provider=settings.provider,
            model=settings.model,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            message=err.summary,  # never the remote server's reply: the test must not read other hosts
        )
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ProviderTestResult(
        ok=True,
        provider=settings.provider,
        model=model,
        latency_ms=latency,
        message=f"{settings.provider} answered in {latency:g} ms with model {model}.",
    )
