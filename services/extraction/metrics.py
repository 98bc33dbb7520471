"""Pipeline metrics, observed where the workers publish a stage's outcome (services/kit/metrics.py
tells how they are served). One function reads every pipeline event, so the two workers count alike."""

from __future__ import annotations

from pydantic import BaseModel

from contracts.documents import DocumentAnalyzed, DocumentExtracted, DocumentFailed, DocumentProcessing
from services.kit.metrics import Counter, Histogram

STAGE_STARTED = Counter(
    "atrium_pipeline_stage_started_total",
    "Documents a worker started a stage for (an attempt: retries count again).",
    ["stage"],
)
STAGE_FINISHED = Counter(
    "atrium_pipeline_stage_finished_total",
    "Documents that left a stage, by outcome: done, failed (final) or retry (tried again later).",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "atrium_pipeline_stage_duration_seconds",
    "Time one document spent in a stage (one attempt, from the worker's start to its outcome).",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
PAGES = Counter(
    "atrium_pipeline_pages_total",
    "Pages the text worker extracted (rate() of it: pages per second).",
    ["stage"],
)
OCR_PAGES = Counter("atrium_pipeline_ocr_pages_total", "Pages read by OCR.")
AI_TOKENS = Counter(
    "atrium_ai_tokens_total",
    "Model tokens used by the AI worker, by provider and direction (in, out).",
    ["provider", "direction"],
)
AI_ERRORS = Counter(
    "atrium_ai_errors_total", "Failed analyses, by provider and reason.", ["provider", "reason"]
)


def observe(event: BaseModel) -> None:
    """Count a published pipeline event (after the stream took it)."""
    if isinstance(event, DocumentProcessing):
        STAGE_STARTED.labels(event.stage).inc()
    elif isinstance(event, DocumentExtracted):
        STAGE_FINISHED.labels("extract", "done").inc()
        STAGE_SECONDS.labels("extract").observe((event.finished_at - event.started_at).total_seconds())
        PAGES.labels("extract").inc(event.page_count)
        OCR_PAGES.inc(event.ocr_pages)
    elif isinstance(event, DocumentAnalyzed):
        STAGE_FINISHED.labels("analyze", "done").inc()
        STAGE_SECONDS.labels("analyze").observe((event.finished_at - event.started_at).total_seconds())
        AI_TOKENS.labels(event.provider, "in").inc(event.tokens_in or 0)
        AI_TOKENS.labels(event.provider, "out").inc(event.tokens_out or 0)
    elif isinstance(event, DocumentFailed):
        STAGE_FINISHED.labels(event.stage, "failed" if event.final else "retry").inc()
        if event.started_at is not None:
            STAGE_SECONDS.labels(event.stage).observe((event.finished_at - event.started_at).total_seconds())
