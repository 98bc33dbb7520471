"""Issue 13, item 14: caps inside the parser child, and on avatars.

- A page whose text layer holds far more characters than any printed page comes back from the text
  worker's sandboxed child cut to the page cap (`TextCaps`), and the result says which page was cut;
  the whole document is cut at the document cap. So a small PDF cannot expand into hundreds of millions
  of characters through pickle, the Object Store and the docs service.
- An avatar is decoded only up to 16 megapixels: a larger image (a decompression bomb or a huge photo)
  is refused over HTTP and the profile keeps its old avatar.
"""

from __future__ import annotations

import io
import os

import httpx
import pytest
from PIL import Image

from contracts.profile import AVATAR_MAX_PIXELS
from services.extraction.text.engine import PageOut, TextCaps, cap_text
from services.extraction.text.handlers import Deps
from tests.conftest import AppUser, Stack
from tests.integration.ocr_helpers import text_pdf

CAPS = TextCaps()


def test_the_caps_cut_pages_tables_and_the_document() -> None:
    caps = TextCaps(page_chars=10, document_chars=25)
    pages = [
        PageOut(1, "a" * 30),
        PageOut(2, "b" * 5, tables=[[["c" * 20, None], ["d" * 3, "e"]]]),
        PageOut(3, "f" * 8),
        PageOut(4, ""),
    ]
    assert cap_text(pages, caps) == [1, 2, 3]
    assert pages[0].text == "a" * 10  # the page cap
    assert pages[1].text == "b" * 5 and pages[1].tables == [[["c" * 10, None], ["", ""]]]  # cells: own cap
    assert pages[2].text == ""  # the document's budget is spent
    total = sum(len(p.text) + sum(len(c or "") for t in p.tables for r in t for c in r) for p in pages)
    assert total <= caps.document_chars
    assert CAPS.page_chars <= 100_000 and CAPS.document_chars <= 5_000_000  # the shipped defaults


async def test_the_child_hands_back_at_most_the_page_cap(stack: Stack) -> None:
    if "extract" not in stack.services:
        pytest.skip("the text worker is not among ATRIUM_TEST_SERVICES")
    worker = stack.services["extract"].deps_as(Deps)
    work = worker.tmp_dir / f"caps-test-{os.getpid()}.pdf"
    line = "0123456789" * 100  # 1,000 characters on one line, mostly off the page: pdfium reads them all
    text_pdf([line] * (CAPS.page_chars // len(line) + 50), work, size=2.0)
    work.chmod(0o644)
    try:
        result = await worker.pool.extract(str(work))
    finally:
        work.unlink(missing_ok=True)
    (page,) = result["pages"]
    assert CAPS.page_chars - len(line) < len(page["text"]) <= CAPS.page_chars
    assert result["text_capped"] == [1]


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, "PNG", optimize=True)
    return buf.getvalue()


async def test_an_avatar_over_16_megapixels_is_refused(http: httpx.AsyncClient, new_user: AppUser) -> None:
    assert AVATAR_MAX_PIXELS == 16_000_000
    headers = {**new_user.headers, "Content-Type": "image/png"}
    r = await http.put("/profile/avatar", content=png(64, 64), headers=headers)
    assert r.status_code == 200, r.text
    before = (await http.get("/profile/avatar", headers=new_user.headers)).content
    big = png(4100, 4000)  # 16.4 MP of white: a few kB on the wire
    assert len(big) < 2 * 1024 * 1024
    r = await http.put("/profile/avatar", content=big, headers=headers)
    assert r.status_code == 422 and "16 megapixels" in r.json()["error"]["message"], r.text
    assert (await http.get("/profile/avatar", headers=new_user.headers)).content == before
    r = await http.put("/profile/avatar", content=png(4000, 4000), headers=headers)  # 16 MP: still decoded
    assert r.status_code == 200, r.text
