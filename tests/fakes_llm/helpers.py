"""Test helpers around the AI worker: feed it an extraction over real NATS and wait for what it publishes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from contracts import Header
from contracts.ai import AI_SETTINGS_GET, AI_SETTINGS_UPDATE
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    OBJECT_BUCKET,
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentFailed,
    DocumentProcessing,
    ExtractionResult,
    PageText,
    PdfMetadata,
    result_object_name,
)
from services.kit.bus import ensure_object_store
from services.kit.client import call

PLATFORM_SECRET = "test-platform-secret-0123456789"  # what tests/conftest.py gives every service

INVOICE_PAGE = """INVOICE
Blue Harbor Supplies Ltd
1 Infinite Loop
10115 Berlin
Invoice number: INV-2091827
Invoice date: 2024-03-09
Due date: 2024-03-23
Bill to:
Stark Logistics Inc
Subtotal: 168,668.30 USD
VAT 19%: 32,046.98 USD
Total due: 200,715.28 USD
"""


class PipelineWatch:
    """Collects analyzed / failed / processing events of the pipeline, from before a document is published."""

    def __init__(self, nc: Any):
        self.nc = nc
        self.events: list[Any] = []
        self.subs: list[Any] = []
        self.arrived = asyncio.Event()

    async def __aenter__(self) -> PipelineWatch:
        for desc in (DOCUMENT_ANALYZED, DOCUMENT_FAILED, DOCUMENT_PROCESSING):

            async def on(msg: Any, model: Any = desc.model) -> None:
                self.events.append(model.model_validate_json(msg.data))
                self.arrived.set()

            self.subs.append(await self.nc.subscribe(desc.subject, cb=on))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sub in self.subs:
            await sub.unsubscribe()

    def of(self, document_id: uuid.UUID, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and e.document_id == document_id]

    async def outcome(
        self, document_id: uuid.UUID, timeout: float = 60.0
    ) -> DocumentAnalyzed | DocumentFailed:
        """The first analyzed event, or the first final failure, of this document."""

        async def first() -> DocumentAnalyzed | DocumentFailed:
            while True:
                done = self.of(document_id, DocumentAnalyzed) + [
                    f for f in self.of(document_id, DocumentFailed) if f.final
                ]
                if done:
                    return done[0]
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(first(), timeout)

    async def analyzed(self, document_id: uuid.UUID, timeout: float = 60.0) -> DocumentAnalyzed:
        result = await self.outcome(document_id, timeout)
        assert isinstance(result, DocumentAnalyzed), result
        return result

    def processing(self, document_id: uuid.UUID) -> list[DocumentProcessing]:
        return self.of(document_id, DocumentProcessing)


async def publish_extracted(
    nc: Any, pages: list[str], *, needs_ocr: bool = False, owner_id: uuid.UUID | None = None
) -> DocumentExtracted:
    """Put an ExtractionResult in the Object Store and announce it, as the text worker does."""
    js = nc.jetstream()
    store = await ensure_object_store(js, OBJECT_BUCKET)
    doc, run, owner = uuid.uuid4(), uuid.uuid4(), owner_id or uuid.uuid4()
    result = ExtractionResult(
        document_id=doc,
        run_id=run,
        page_count=len(pages),
        needs_ocr=needs_ocr,
        pages=[PageText(number=i + 1, text=t) for i, t in enumerate(pages)],
        metadata=PdfMetadata(title="test document"),
        engine="test",
    )
    name = result_object_name(doc, run)
    await store.put(name, result.model_dump_json().encode())
    now = datetime.now(UTC)
    event = DocumentExtracted(
        document_id=doc,
        owner_id=owner,
        run_id=run,
        page_count=len(pages),
        needs_ocr=needs_ocr,
        chars=sum(len(p) for p in pages),
        table_count=0,
        metadata=result.metadata,
        result_object=name,
        engine="test",
        worker="test",
        attempt=1,
        started_at=now,
        finished_at=now,
    )
    await js.publish(
        DOCUMENT_EXTRACTED.subject,
        event.model_dump_json().encode(),
        headers={Header.MSG_ID: f"extracted:{doc}:{run}"},
    )
    return event


async def set_settings(nc: Any, token: str, **changes: Any) -> Any:
    return await call(nc, AI_SETTINGS_UPDATE, changes, token=token)


async def wait_for_provider(nc: Any, token: str, provider: str, timeout: float = 10.0) -> None:
    """Until the ai service's watched settings show `provider`."""

    async def poll() -> None:
        # The state lives in another process, so there is nothing to await but its answer.
        while True:
            if (await call(nc, AI_SETTINGS_GET, {}, token=token)).provider == provider:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


BUILTIN_DEFAULTS = {
    "provider": "builtin",
    "model": "",
    "base_url": "",
    "api_key": "",
    "prompt_instructions": "",
}
