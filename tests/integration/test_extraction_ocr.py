"""The text worker OCRs scans over real NATS: the outcome event says how many pages were recognised,
the stored result carries the text and word boxes, the PDF with text layer is its own object beside
the untouched original, and hostile scans end with a reason while the worker goes on. Through the
gateway, a scanned document becomes searchable by a word of its body."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import httpx
import pypdfium2 as pdfium
import pytest

from contracts.documents import OBJECT_BUCKET, DocumentExtracted, text_layer_object_name
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration.ocr_helpers import OCRMYPDF, SCANNED
from tests.integration.test_documents_pipeline import wait_for_status
from tests.integration.test_extraction_text import (  # noqa: F401  (fixtures)
    Outcomes,
    extract_worker,
    outcomes,
    stored_result,
    upload,
)


async def object_bytes(stack: Stack, name: str) -> bytes:
    store = await stack.nc.jetstream().object_store(OBJECT_BUCKET)
    return (await store.get(name)).data  # type: ignore[no-any-return]


async def test_a_scan_is_ocred_with_words_and_a_text_layer_object(
    stack: Stack, extract_worker: Any, outcomes: Outcomes
) -> None:
    original = (SCANNED / "scan_invoice_1p.pdf").read_bytes()
    event = await upload(stack, SCANNED / "scan_invoice_1p.pdf")
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentExtracted), done
    assert not done.needs_ocr and done.ocr_pages == 1 and not done.ocr_reason and done.chars > 500
    assert done.text_layer_object == text_layer_object_name(event.document_id, event.run_id)
    ocr_progress = [(p.done, p.total, p.attempt) for p in outcomes.ocr[event.document_id]]
    assert ocr_progress == [(0, 1, 1), (1, 1, 1)]  # started, then each page read

    result = await stored_result(stack, done)
    page = result.pages[0]
    assert "Invoice number: INV-2091827" in page.text and "Total due: 200,715.28 USD" in page.text
    assert page.ocr and page.ocr.confidence and page.ocr.words and page.ocr.languages == "eng"
    assert result.ocr and result.ocr.pages == [1] and result.ocr.engine.startswith("tesseract 5")
    assert result.ocr.text_layer_object == done.text_layer_object
    assert {"render", "prepare", "recognize", "text_layer"} <= set(result.ocr.step_seconds)
    assert page.ocr.engine == result.ocr.engine == done.ocr_engine and page.ocr.word_boxes

    layered = await object_bytes(stack, done.text_layer_object)
    pdf = pdfium.PdfDocument(io.BytesIO(layered))
    assert "INV-2091827" in pdf[0].get_textpage().get_text_range()
    pdf.close()
    stored_original = await object_bytes(stack, event.object_name)
    assert hashlib.sha256(stored_original).digest() == hashlib.sha256(original).digest()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("hugemono.pdf", "megapixel limit for OCR"), ("enormous.pdf", "")],
)
async def test_hostile_scans_end_with_a_reason_and_the_worker_goes_on(
    stack: Stack, extract_worker: Any, outcomes: Outcomes, name: str, reason: str
) -> None:
    hostile = await upload(stack, OCRMYPDF / name)
    done = await outcomes.terminal(hostile.document_id)
    assert isinstance(done, DocumentExtracted), done
    if reason:  # not read: the document stays `needs_ocr`, saying why
        assert done.needs_ocr and done.ocr_pages == 0 and reason in done.ocr_reason
        assert done.text_layer_object is None
    else:  # read at a lower resolution
        assert not done.needs_ocr and done.ocr_pages == 1
    after = await upload(stack, SCANNED / "scan_invoice_1p.pdf")
    assert isinstance(await outcomes.terminal(after.document_id), DocumentExtracted)


async def test_a_scanned_upload_becomes_ready_and_searchable(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker (service 'extract') in the stack")
    final = {"ready"} if "ai" in stack.services else {"analyzing"}
    r = await h.upload(http, new_user, SCANNED / "scan_letter_1p.pdf", "scan_letter_1p.pdf")
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    body = await wait_for_status(http, new_user, doc_id, final | {"failed", "needs_ocr"}, timeout_s=300)
    assert body["status"] in final, body
    assert "Subject: Contract renewal REF-27965" in body["pages"][0]["text"]
    found = (await http.get("/documents", headers=new_user.headers, params={"q": "renewal"})).json()
    assert doc_id in [d["id"] for d in found["items"]]
