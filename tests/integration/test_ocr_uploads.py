"""Scans that arrive as images, and vision models as the OCR engine, through the gateway with every service.

Images (what phone scanning apps and office scanners produce): a JPEG, a PNG and a two-page TIFF become
documents whose pages are the scans, read by Tesseract; the original stays the image as uploaded; content
decides, not the name. Vision OCR: each provider's real SDK client talks to a local server that speaks its
HTTP API (tests/fakes_llm, which reads the picture it receives with Tesseract, so the answer depends on the
image sent); its errors and timeouts end as the settings' reason or a retry."""

from __future__ import annotations

import io
import zlib
from typing import Any

import httpx
import pypdfium2 as pdfium
import pytest
from PIL import Image

from contracts.documents import VISION_MAX_PX
from tests.conftest import AppUser, Stack
from tests.fakes_llm.server import FakeLLM
from tests.integration.ocr_helpers import SCANNED
from tests.integration.ocr_pipeline_helpers import DEFAULT_OCR, needs_workers, set_ocr, settled, upload

INVOICE = SCANNED / "scan_invoice_1p.pdf"
LETTERS = SCANNED / "scan_letter_10p.pdf"
API_KEY = "sk-vision-test-0123456789"


def page_image(pdf: Any, index: int = 0, dpi: int = 200) -> Image.Image:
    doc = pdfium.PdfDocument(str(pdf))
    try:
        return doc[index].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        doc.close()


def encoded(images: list[Image.Image], fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    first, *rest = images
    first.save(out, format=fmt, dpi=(200, 200), save_all=bool(rest), append_images=rest, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "media", "name", "options"),
    [
        ("JPEG", "image/jpeg", "phone.jpg", {"quality": 80}),
        ("PNG", "image/png", "scan.png", {}),
    ],
)
async def test_an_image_upload_becomes_a_scanned_document(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, fmt: str, media: str, name: str, options: Any
) -> None:
    needs_workers(stack)
    original = encoded([page_image(INVOICE)], fmt, **options)
    doc_id = await upload(http, new_user, original, name, media)
    doc = await settled(http, new_user, doc_id)
    assert doc["status"] == "ready", doc
    assert doc["media_type"] == media and doc["page_count"] == 1
    assert "INV-2091827" in doc["pages"][0]["text"] and doc["pages"][0]["ocr"]["word_boxes"]
    assert doc["fields"]["invoice_number"]["value"] == "INV-2091827"
    found = (await http.get("/documents", headers=new_user.headers, params={"q": "Harbor"})).json()
    assert doc_id in [d["id"] for d in found["items"]]
    r = await http.get(f"/documents/{doc_id}/file", headers=new_user.headers)
    assert r.status_code == 200 and r.content == original and r.headers["content-type"] == media
    r = await http.get(f"/documents/{doc_id}/text-layer", headers=new_user.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    layered = pdfium.PdfDocument(r.content)
    assert "INV-2091827" in layered[0].get_textpage().get_text_range()
    layered.close()
    r = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


async def test_a_multi_page_tiff_becomes_one_page_per_frame(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    needs_workers(stack)
    frames = [page_image(LETTERS, 0), page_image(LETTERS, 1)]
    doc_id = await upload(
        http, new_user, encoded(frames, "TIFF", compression="tiff_lzw"), "two.tif", "image/tiff"
    )
    doc = await settled(http, new_user, doc_id)
    assert doc["status"] == "ready", doc
    assert doc["page_count"] == 2 and doc["ocr"]["pages"] == 2
    assert all(len(p["text"].split()) > 20 and p["ocr"]["word_boxes"] for p in doc["pages"]), doc["pages"]
    assert doc["pages"][0]["text"] != doc["pages"][1]["text"]


async def test_content_decides_not_the_name(stack: Stack, http: httpx.AsyncClient, new_user: AppUser) -> None:
    needs_workers(stack)
    r = await http.post(
        "/documents",
        headers=new_user.headers,
        files={"file": ("photo.jpg", b"GIF89a" + bytes(200), "image/jpeg")},
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported", r.text
    assert "JPEG, PNG or TIFF" in r.json()["error"]["message"]
    # A PNG named .pdf is taken as the PNG it is.
    png = encoded([page_image(INVOICE, dpi=150)], "PNG")
    doc = await settled(http, new_user, await upload(http, new_user, png, "named.pdf", "application/pdf"))
    assert doc["status"] == "ready" and doc["media_type"] == "image/png", doc
    # A header that claims more pixels than the limit is refused before anything is decoded.
    huge = bytearray(encoded([Image.new("L", (8, 8))], "PNG"))
    huge[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")  # IHDR width, height
    huge[29:33] = zlib.crc32(bytes(huge[12:29])).to_bytes(4, "big")  # the chunk's CRC, so the header is valid
    r = await http.post(
        "/documents", headers=new_user.headers, files={"file": ("huge.png", bytes(huge), "image/png")}
    )
    assert r.status_code == 422 and "megapixel limit" in r.json()["error"]["message"], r.text


# ---- vision models as the OCR engine -------------------------------------------------------------


@pytest.fixture
async def vision_server() -> Any:
    server = await FakeLLM(api_key=API_KEY, slow_s=45.0).start()
    yield server
    await server.stop()


async def use_vision(
    stack: Stack, http: httpx.AsyncClient, admin: AppUser, provider: str, server: FakeLLM
) -> None:
    await set_ocr(
        stack,
        http,
        admin,
        ocr_provider=provider,
        # OpenAI's SDK takes the base URL with its version, as the AI settings do
        ocr_base_url=server.base_url + ("/v1" if provider == "openai_compatible" else ""),
        ocr_model="fake-vision",
        ocr_api_key=API_KEY,
    )


PROVIDER_PATHS = {
    "anthropic": "/v1/messages",
    "openai_compatible": "/v1/chat/completions",
    "ollama": "/api/chat",
}


@pytest.mark.parametrize("provider", ["anthropic", "openai_compatible", "ollama"])
async def test_a_vision_model_reads_the_scan(
    stack: Stack,
    http: httpx.AsyncClient,
    new_user: AppUser,
    new_admin: AppUser,
    vision_server: FakeLLM,
    provider: str,
) -> None:
    needs_workers(stack)
    await use_vision(stack, http, new_admin, provider, vision_server)
    try:
        doc = await settled(http, new_user, await upload(http, new_user, INVOICE, "v.pdf", "application/pdf"))
    finally:
        await set_ocr(stack, http, new_admin, **DEFAULT_OCR)
    assert doc["status"] == "ready", doc
    page = doc["pages"][0]
    assert "INV-2091827" in page["text"] and doc["fields"]["invoice_number"]["value"] == "INV-2091827"
    assert page["ocr"]["engine"] == f"{provider} fake-vision" and not page["ocr"]["word_boxes"]
    assert not doc["ocr"]["text_layer"]  # a model gives no word positions
    assert len(vision_server.hits(PROVIDER_PATHS[provider])) == 1
    picture = vision_server.images[-1]
    assert picture.format == "JPEG" and max(picture.size) <= VISION_MAX_PX


async def test_a_refused_key_leaves_needs_ocr_with_the_providers_reason(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser, vision_server: FakeLLM
) -> None:
    needs_workers(stack)
    await set_ocr(
        stack,
        http,
        new_admin,
        ocr_provider="openai_compatible",
        ocr_base_url=vision_server.base_url + "/v1",
        ocr_api_key="sk-wrong-key-000000000",
    )
    try:
        doc = await settled(http, new_user, await upload(http, new_user, INVOICE, "k.pdf", "application/pdf"))
    finally:
        await set_ocr(stack, http, new_admin, **DEFAULT_OCR, ocr_base_url="", ocr_api_key="")
    assert doc["status"] == "needs_ocr", doc
    reason = doc["ocr"]["reason"]
    assert "The vision OCR provider refused" in reason and "Documents settings" in reason
    assert "sk-wrong-key" not in str(doc)  # the key is never shown back


async def test_a_vision_server_that_errs_or_is_slow_is_tried_again(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser, vision_server: FakeLLM
) -> None:
    """A 500, then an answer later than the request timeout (the SDK's own retry): the attempt fails as
    `timeout`, the run is tried again later, and then the page is read. (The timeout leaves the fake model,
    Tesseract on a busy machine, time enough to answer.)"""
    needs_workers(stack)
    await use_vision(stack, http, new_admin, "anthropic", vision_server)
    await set_ocr(stack, http, new_admin, request_timeout_s=30)  # the AI's and the vision OCR's
    vision_server.queue("500", "slow")
    try:
        doc = await settled(http, new_user, await upload(http, new_user, INVOICE, "e.pdf", "application/pdf"))
    finally:
        await set_ocr(stack, http, new_admin, **DEFAULT_OCR, request_timeout_s=60)
    why = (
        doc["failure_reason"],
        doc["failure_message"],
        [(t["status"], t.get("error")) for t in doc["tasks"]],
    )
    assert doc["status"] == "ready", (why, [r.path for r in vision_server.requests])
    assert "INV-2091827" in doc["pages"][0]["text"]
    assert len(vision_server.hits("/v1/messages")) >= 3
