"""The extraction engine in-process on real corpus files (no pool, no NATS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.extraction.text.engine import (
    ExtractError,
    Limits,
    clean_text,
    extract_hybrid,
    extract_plumber_only,
    parse_pdf_date,
    pdfium_text_is_suspect,
)
from tests.conftest import CORPUS

PLUMBER = CORPUS / "public" / "pdfplumber" / "tests" / "pdfs"
EXPECTED = json.loads((CORPUS / "synthetic" / "expected.json").read_text())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("D:20190404105713+11'00'", datetime(2019, 4, 4, 10, 57, 13, tzinfo=timezone(timedelta(hours=11)))),
        ("D:20240208135858-05'00'", datetime(2024, 2, 8, 13, 58, 58, tzinfo=timezone(timedelta(hours=-5)))),
        ("D:2001", datetime(2001, 1, 1, tzinfo=UTC)),
        ("20000101000000Z", datetime(2000, 1, 1, tzinfo=UTC)),
        ("D:20231345", None),  # month 13
        ("yesterday", None),
        (None, None),
    ],
)
def test_pdf_dates(raw: str | None, expected: datetime | None) -> None:
    assert parse_pdf_date(raw) == expected


def test_clean_text_normalises_line_ends() -> None:
    assert clean_text("a  \r\nb\rc\n\n") == "a\nb\nc"


def test_disagreement_rule() -> None:
    assert pdfium_text_is_suspect(pdfium_visible=3, text_objects=40)  # text layer pdfium could not read
    assert not pdfium_text_is_suspect(pdfium_visible=400, text_objects=40)
    assert not pdfium_text_is_suspect(pdfium_visible=0, text_objects=0)  # a scan: nothing to read


@pytest.mark.parametrize("name", ["invoice_10p.pdf", "letter_10p.pdf"])
def test_hybrid_finds_the_same_tables_as_pdfplumber(name: str) -> None:
    path = str(CORPUS / "synthetic" / name)
    hybrid, plumber = extract_hybrid(path, Limits()), extract_plumber_only(path, Limits())
    assert hybrid["page_count"] == plumber["page_count"] == EXPECTED[name]["pages"]
    assert [p["tables"] for p in hybrid["pages"]] == [p["tables"] for p in plumber["pages"]]
    assert hybrid["metadata"] == plumber["metadata"]
    for page, expected in zip(hybrid["pages"], EXPECTED[name]["page_data"], strict=True):
        lines = {" ".join(line.split()) for line in page["text"].splitlines()}
        assert all(" ".join(line.split()) in lines for line in expected["lines"])


def test_encrypted_and_broken() -> None:
    with pytest.raises(ExtractError) as failure:
        extract_hybrid(str(PLUMBER / "password-example.pdf"), Limits())
    assert failure.value.reason == "encrypted"
    with pytest.raises(ExtractError) as failure:
        extract_hybrid(str(PLUMBER / "empty.pdf"), Limits())
    assert failure.value.reason == "unreadable" and "PDFium" in failure.value.message
    assert extract_hybrid(str(PLUMBER / "pr-138-example.pdf"), Limits())["page_count"] == 2  # empty password
