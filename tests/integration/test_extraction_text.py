"""The text worker over real NATS: corpus PDFs go into the Object Store, `DocumentUploaded` is
published by hand, and the published outcome and the stored `ExtractionResult` are checked."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.js.api import ObjectMeta

from contracts import Header
from contracts.documents import (
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_OCR_PROGRESS,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    DocumentExtracted,
    DocumentFailed,
    DocumentOcrProgress,
    DocumentUploaded,
    ExtractionResult,
)
from services.extraction.text.app import DURABLE
from services.extraction.text.handlers import Deps
from services.kit.bus import ensure_object_store
from tests.conftest import CORPUS, Stack

SYNTHETIC = CORPUS / "synthetic"
PLUMBER = CORPUS / "public" / "pdfplumber" / "tests" / "pdfs"
SAMPLES = CORPUS / "public" / "sample-files"
EXPECTED: dict[str, Any] = json.loads((SYNTHETIC / "expected.json").read_text())


@dataclass
class Outcomes:
    """Every pipeline event of the documents a test watches, as they arrive."""

    extracted: dict[uuid.UUID, list[DocumentExtracted]] = field(default_factory=dict)
    failed: dict[uuid.UUID, list[DocumentFailed]] = field(default_factory=dict)
    processing: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    progress: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    ocr: dict[uuid.UUID, list[DocumentOcrProgress]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def terminal(
        self, document_id: uuid.UUID, timeout: float = 120
    ) -> DocumentExtracted | DocumentFailed:
        async def wait() -> DocumentExtracted | DocumentFailed:
            while True:
                if self.extracted.get(document_id):
                    return self.extracted[document_id][0]
                finals = [f for f in self.failed.get(document_id, []) if f.final]
                if finals:
                    return finals[0]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)


@pytest_asyncio.fixture
async def outcomes(stack: Stack) -> AsyncIterator[Outcomes]:
    out = Outcomes()

    def keep(table: dict[uuid.UUID, list[Any]], item: Any, doc: uuid.UUID) -> None:
        table.setdefault(doc, []).append(item)
        out.changed.set()

    async def on_extracted(msg: Any) -> None:
        e = DocumentExtracted.model_validate_json(msg.data)
        keep(out.extracted, e, e.document_id)

    # Only the extract stage: with the whole catalog running, the AI worker and the documents
    # service publish their own stages and status progress for the same documents.
    async def on_failed(msg: Any) -> None:
        e = DocumentFailed.model_validate_json(msg.data)
        if e.stage == "extract":
            keep(out.failed, e, e.document_id)

    async def on_processing(msg: Any) -> None:
        d = json.loads(msg.data)
        if d["stage"] == "extract":
            keep(out.processing, d, uuid.UUID(d["document_id"]))

    async def on_progress(msg: Any) -> None:
        d = json.loads(msg.data)
        if d["stage"] == "extract" and d["status"] == "extracting" and d.get("page") is not None:
            keep(out.progress, d, uuid.UUID(d["document_id"]))

    async def on_ocr(msg: Any) -> None:
        e = DocumentOcrProgress.model_validate_json(msg.data)
        keep(out.ocr, e, e.document_id)

    subs = [
        await stack.nc.subscribe(DOCUMENT_OCR_PROGRESS.subject, cb=on_ocr),
        await stack.nc.subscribe(DOCUMENT_EXTRACTED.subject, cb=on_extracted),
        await stack.nc.subscribe(DOCUMENT_FAILED.subject, cb=on_failed),
        await stack.nc.subscribe(DOCUMENT_PROCESSING.subject, cb=on_processing),
        await stack.nc.subscribe(DOCUMENT_PROGRESS.wildcard(), cb=on_progress),
    ]
    await stack.nc.flush()
    yield out
    for s in subs:
        await s.unsubscribe()


@pytest_asyncio.fixture
async def extract_worker(stack: Stack) -> Any:
    """The harness's `extract` service, started once per stack if ATRIUM_TEST_SERVICES left it out."""
    if "extract" not in stack.services:
        stack.services["extract"] = await stack.start_service("extract")
    return stack.services["extract"]


async def upload(
    stack: Stack, pdf: Path | bytes, *, owner: uuid.UUID | None = None, publish: bool = True, name: str = ""
) -> DocumentUploaded:
    """Store the file like the gateway does and (optionally) publish the upload event."""
    js = stack.nc.jetstream()
    store = await ensure_object_store(js, OBJECT_BUCKET)
    document_id = uuid.uuid4()
    data = pdf if isinstance(pdf, bytes) else None
    if isinstance(pdf, Path):
        with pdf.open("rb") as f:  # streamed from disk in chunks, as the gateway does
            info = await store.put(str(document_id), f, meta=ObjectMeta(name=str(document_id)))
    else:
        info = await store.put(str(document_id), data)
    event = DocumentUploaded(
        document_id=document_id,
        owner_id=owner or uuid.uuid4(),
        run_id=uuid.uuid4(),
        filename=name or (pdf.name if isinstance(pdf, Path) else "upload.pdf"),
        size=info.size,
        sha256="0" * 64,
        object_name=str(document_id),
        uploaded_at=datetime.now(UTC),
    )
    if publish:
        await publish_uploaded(stack, event, f"{document_id}:{event.run_id}")
    return event


async def publish_uploaded(stack: Stack, event: DocumentUploaded, msg_id: str) -> None:
    js = stack.nc.jetstream()
    await js.publish(
        DOCUMENT_UPLOADED.subject, event.model_dump_json().encode(), headers={Header.MSG_ID: msg_id}
    )


async def stored_result(stack: Stack, extracted: DocumentExtracted) -> ExtractionResult:
    store = await stack.nc.jetstream().object_store(OBJECT_BUCKET)
    obj = await store.get(extracted.result_object)
    return ExtractionResult.model_validate_json(obj.data)


async def consumer_drained(stack: Stack, timeout: float = 60) -> None:
    """Wait until the worker's durable has handed out and had acknowledged every message it holds."""
    js = stack.nc.jetstream()

    async def wait() -> None:
        while True:
            info = await js.consumer_info(DOCUMENT_UPLOADED.stream, DURABLE)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(wait(), timeout)


def lines_of(result: ExtractionResult, number: int) -> set[str]:
    return {" ".join(line.split()) for line in result.pages[number - 1].text.splitlines()}


@pytest.mark.parametrize("name", ["invoice_1p.pdf", "invoice_10p.pdf", "letter_10p.pdf"])
async def test_synthetic_text_fields_and_tables_are_found(
    stack: Stack, extract_worker: Any, outcomes: Outcomes, name: str
) -> None:
    event = await upload(stack, SYNTHETIC / name)
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentExtracted), done
    expected = EXPECTED[name]
    assert done.page_count == expected["pages"] and not done.needs_ocr
    assert done.metadata.title == expected["metadata"]["Title"]
    assert done.metadata.author == expected["metadata"]["Author"]
    assert done.metadata.producer and done.metadata.creation_date is not None
    assert done.worker == extract_worker.deps_as(Deps).worker and done.attempt == 1
    result = await stored_result(stack, done)
    assert result.document_id == event.document_id and result.page_count == expected["pages"]
    for number, page in enumerate(expected["page_data"], start=1):
        found = lines_of(result, number)
        missing = [line for line in page["lines"] if " ".join(line.split()) not in found]
        assert not missing, f"page {number}: {missing}"
        if page.get("table"):
            rows = [row for table in result.pages[number - 1].tables for row in table]
            for row in page["table"]:
                assert row in rows, f"page {number}: table row {row} not found in {rows[:3]}…"
        text = result.pages[number - 1].text
        for key, value in page.get("fields", {}).items():
            if isinstance(value, str):
                assert value in text, f"page {number}: field {key}={value!r} not in the text"
    # One progress message per page, and the run was announced as started.
    pages = sorted(p["page"] for p in outcomes.progress.get(event.document_id, []))
    assert pages == list(range(1, expected["pages"] + 1))
    assert [p["stage"] for p in outcomes.processing[event.document_id]] == ["extract"]


async def test_public_table_values_and_empty_password(
    stack: Stack, extract_worker: Any, outcomes: Outcomes
) -> None:
    # pr-138 is encrypted with an empty user password: it must open like any other file.
    events = [
        await upload(stack, PLUMBER / "pr-138-example.pdf"),
        await upload(stack, PLUMBER / "nics-background-checks-2015-11.pdf"),
    ]
    loan, nics = [await outcomes.terminal(e.document_id) for e in events]
    assert isinstance(loan, DocumentExtracted) and loan.page_count == 2 and loan.table_count > 0
    assert loan.metadata.title == "Home Loan Interest Rates"
    loan_result = await stored_result(stack, loan)
    assert "Effective as at 9 April 2019" in loan_result.pages[0].text
    assert isinstance(nics, DocumentExtracted)
    nics_result = await stored_result(stack, nics)
    cells = "\n".join(c for t in nics_result.pages[0].tables for row in t for c in row if c)
    # States and totals of the NICS firearm checks table (pdfplumber's default settings merge some rows).
    assert "Alabama" in cells and "Wyoming" in cells and "Totals" in cells
    assert "NICS Firearm Background Checks" in nics_result.pages[0].text


async def test_scanned_pdf_needs_ocr_not_failed(
    stack: Stack, extract_worker: Any, outcomes: Outcomes
) -> None:
    event = await upload(stack, SAMPLES / "019-grayscale-image" / "grayscale-image.pdf")
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentExtracted)
    assert done.needs_ocr and done.page_count == 1 and done.chars == 0
    result = await stored_result(stack, done)
    assert result.needs_ocr and [p.text for p in result.pages] == [""]


@pytest.mark.parametrize(
    ("path", "reason", "hint"),
    [
        (PLUMBER / "empty.pdf", "unreadable", "Root"),
        (PLUMBER / "password-example.pdf", "encrypted", "password"),
        (
            SAMPLES / "005-libreoffice-writer-password" / "libreoffice-writer-password.pdf",
            "encrypted",
            "password",
        ),
    ],
)
async def test_broken_and_encrypted_files_fail_with_reason(
    stack: Stack, extract_worker: Any, outcomes: Outcomes, path: Path, reason: str, hint: str
) -> None:
    event = await upload(stack, path)
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentFailed), done
    assert done.reason == reason and done.final and done.stage == "extract" and hint in done.message
    assert done.worker == extract_worker.deps_as(Deps).worker
    # The worker is still there: the next good file goes through.
    ok = await upload(stack, SYNTHETIC / "invoice_1p.pdf")
    assert isinstance(await outcomes.terminal(ok.document_id), DocumentExtracted)


async def test_same_upload_twice_is_extracted_once(
    stack: Stack, extract_worker: Any, outcomes: Outcomes
) -> None:
    event = await upload(stack, SYNTHETIC / "letter_1p.pdf", publish=False)
    # Same Nats-Msg-Id: JetStream drops the copy; a different msg id for the same run: the run marker does.
    await publish_uploaded(stack, event, f"{event.document_id}:{event.run_id}")
    await publish_uploaded(stack, event, f"{event.document_id}:{event.run_id}")
    await publish_uploaded(stack, event, f"{event.document_id}:{event.run_id}:again")
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentExtracted)
    await consumer_drained(stack)
    assert len(outcomes.extracted[event.document_id]) == 1
    assert len(outcomes.processing[event.document_id]) == 1
    # A re-run of the same document is a new run and is extracted again.
    rerun = event.model_copy(update={"run_id": uuid.uuid4(), "kind": "reprocess", "reprocess": True})
    await publish_uploaded(stack, rerun, f"{rerun.document_id}:{rerun.run_id}")
    outcomes.extracted.pop(event.document_id)
    again = await outcomes.terminal(event.document_id)
    assert isinstance(again, DocumentExtracted) and again.run_id == rerun.run_id and again.kind == "reprocess"
