"""OCR page by page with the real Tesseract: which pages are OCRed, turned and skewed scans, German and
Russian, hostile images and the limits, and the sandboxed pool surviving them."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as c
import pytest

from services.extraction.ocr.classify import page_content, usable_chars
from services.extraction.ocr.metrics import missed_words, word_recall
from services.extraction.ocr.reader import OcrOptions
from services.extraction.ocr.tessdata import installed
from services.extraction.text.engine import ExtractError, OcrJob, render_previews
from services.extraction.text.pool import ExtractPool, PoolLimits
from tests.integration.ocr_helpers import (
    OCRMYPDF,
    SCANNED,
    SYNTHETIC,
    expected_text,
    make_scan,
    ocr,
    pdf_text,
    text_pdf,
    turned_copy,
)

INVOICE = SCANNED / "scan_invoice_1p.pdf"


def invoice_truth() -> str:
    return expected_text()["scan_invoice_1p.pdf"]["page_text"][0]  # type: ignore[no-any-return]


def add_text(source: Path, target: Path, text: str) -> None:
    """A copy of a one-page PDF with `text` added as a (visible) text object: a sparse text layer."""
    doc = pdfium.PdfDocument(str(source))
    page = doc[0]
    font = c.FPDFText_LoadStandardFont(doc.raw, b"Helvetica")
    obj = c.FPDFPageObj_CreateTextObj(doc.raw, font, 9.0)
    wide = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
    c.FPDFText_SetText(obj, ctypes.cast(wide, ctypes.POINTER(ctypes.c_ushort)))
    c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 40, 20)
    c.FPDFPage_InsertObject(page.raw, obj)
    c.FPDFPage_GenerateContent(page.raw)
    page.close()
    doc.save(str(target))
    doc.close()


def test_usable_characters_leave_out_invisible_and_unmapped_ones() -> None:
    assert usable_chars("\u200b \u00ad\ufeff\n\t\ufffd\x07\ue000") == 0
    assert usable_chars("Grüße, Привет 42") == 14


def test_a_mixed_document_ocrs_only_its_scanned_page(tmp_path: Path) -> None:
    mixed = pdfium.PdfDocument.new()
    mixed.import_pages(pdfium.PdfDocument(str(SYNTHETIC / "letter_1p.pdf")))
    mixed.import_pages(pdfium.PdfDocument(str(INVOICE)))
    mixed.save(str(tmp_path / "mixed.pdf"))
    mixed.close()
    result = ocr(tmp_path / "mixed.pdf", ("eng", "deu"), tmp_path / "layer.pdf")
    born_digital, scanned = result["pages"]
    assert "ocr" not in born_digital and born_digital["text"] == pdf_text(
        SYNTHETIC / "letter_1p.pdf", 0
    ).replace("\r\n", "\n")
    assert result["ocr"]["pages"] == [2] and word_recall(invoice_truth(), scanned["text"]) >= 0.97
    # The text layer goes onto the scanned page only: the letter keeps its own text, once.
    assert pdf_text(tmp_path / "layer.pdf", 0) == pdf_text(tmp_path / "mixed.pdf", 0)
    assert "INV-2091827" in pdf_text(tmp_path / "layer.pdf", 1)


@pytest.mark.parametrize("layer", ["Scanned by ACME", "\u200b \u200b \ufeff"])
def test_a_scan_with_a_sparse_or_invisible_text_layer_counts_as_scanned(tmp_path: Path, layer: str) -> None:
    add_text(INVOICE, tmp_path / "sparse.pdf", layer)
    doc = pdfium.PdfDocument(str(tmp_path / "sparse.pdf"))
    assert page_content(doc[0]).image_share > 0.99 and doc[0].get_textpage().get_text_range().strip()
    doc.close()
    result = ocr(tmp_path / "sparse.pdf", ("eng", "deu"))
    assert result["ocr"]["pages"] == [1]
    assert word_recall(invoice_truth(), result["pages"][0]["text"]) >= 0.97


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_a_turned_page_is_read_upright(tmp_path: Path, clockwise: int) -> None:
    turned_copy(INVOICE, tmp_path / "turned.pdf", clockwise)
    result = ocr(tmp_path / "turned.pdf", ("eng", "deu"), tmp_path / "layer.pdf")
    page = result["pages"][0]
    assert page["ocr"]["rotation"] == clockwise
    recall = word_recall(invoice_truth(), page["text"])
    assert recall >= 0.97, (recall, missed_words(invoice_truth(), page["text"]))
    width, height = page["ocr"]["width"], page["ocr"]["height"]
    assert all(
        0 <= w["box"][0] < w["box"][2] <= width and 0 <= w["box"][1] < w["box"][3] <= height
        for w in page["ocr"]["words"]
    )
    assert word_recall(page["text"], pdf_text(tmp_path / "layer.pdf", 0)) >= 0.99


def test_real_skewed_page_with_rotate_entry(tmp_path: Path) -> None:
    """OCRmyPDF's rotated_skew.pdf: a skewed scan on a page displayed through /Rotate 90."""
    result = ocr(OCRMYPDF / "rotated_skew.pdf", ("eng",), tmp_path / "layer.pdf")
    page = result["pages"][0]
    assert "The LinnSequencer" in page["text"] and "32 Track MIDI Sequence Recorder" in page["text"]
    assert page["ocr"]["confidence"] > 85 and abs(page["ocr"]["skew"]) > 1
    layer = pdf_text(tmp_path / "layer.pdf", 0)
    assert word_recall(page["text"], layer) >= 0.99


def _languages_installed(*langs: str) -> None:
    missing = [lang for lang in langs if lang not in installed()]
    assert not missing, (
        f"language packs missing: apt-get install {' '.join('tesseract-ocr-' + m for m in missing)}"
    )


GERMAN = [
    "Müller & Söhne GmbH",
    "Hauptstraße 12, 80331 München",
    "Rechnungsnummer: RE-2024-0815",
    "Rechnungsdatum: 14. März 2024",
    "Sehr geehrte Frau Köhler,",
    "für die Lieferung der Büromöbel berechnen wir Ihnen",
    "folgende Positionen. Die Größe der Schränke",
    "entspricht Ihrer Bestellung vom 2. Februar.",
    "Gesamtbetrag: 1.234,56 EUR",
    "Zahlbar innerhalb von vierzehn Tagen ohne Abzug.",
    "Mit freundlichen Grüßen",
    "Jürgen Weiß, Buchhaltung",
]
RUSSIAN = [
    "ООО «Северный ветер»",
    "ул. Ленина, д. 5, Санкт-Петербург",
    "Счёт № 2024-117 от 3 апреля 2024 г.",
    "Уважаемый Иван Петрович,",
    "направляем Вам счёт за поставку",
    "офисной мебели по договору поставки.",
    "Стоимость работ составляет сорок тысяч рублей.",
    "Итого к оплате: 40 000,00 руб.",
    "Оплата в течение десяти рабочих дней.",
    "С уважением, главный бухгалтер",
    "Мария Сергеевна Кузнецова",
]


@pytest.mark.parametrize(("lines", "language"), [(GERMAN, "deu"), (RUSSIAN, "rus")])
def test_german_and_russian_scans_read_with_their_languages(
    tmp_path: Path, lines: list[str], language: str
) -> None:
    _languages_installed(language)
    text_pdf(lines, tmp_path / "source.pdf")
    (truth,) = make_scan(tmp_path / "source.pdf", tmp_path / "scan.pdf")
    result = ocr(tmp_path / "scan.pdf", (language,))
    read = result["pages"][0]["text"]
    assert result["pages"][0]["ocr"]["languages"] == language
    assert word_recall(truth, read) >= 0.97, missed_words(truth, read)
    if language == "rus":  # read as English, the same scan is mostly lost: the language is what reads it
        assert word_recall(truth, ocr(tmp_path / "scan.pdf", ("eng",))["pages"][0]["text"]) < 0.5


def test_an_image_over_the_pixel_cap_is_not_decoded_and_says_why(tmp_path: Path) -> None:
    assert render_previews(str(OCRMYPDF / "hugemono.pdf"), str(tmp_path), [1]) == []  # no preview either
    result = ocr(OCRMYPDF / "hugemono.pdf", ("eng",))
    assert result["needs_ocr"] and result["ocr"]["skipped"] == [1] and not result["ocr"]["pages"]
    assert "35000 × 35000 pixels" in result["ocr"]["reason"] and "megapixel limit" in result["ocr"]["reason"]
    assert result["pages"][0]["ocr"]["reason"] == result["ocr"]["reason"]


def test_a_very_large_page_is_read_at_a_lower_resolution() -> None:
    result = ocr(OCRMYPDF / "enormous.pdf", ("eng",))  # 30 × 30 inches, a 9000 × 9000 image
    page = result["pages"][0]
    assert result["ocr"]["pages"] == [1] and 100 <= page["ocr"]["dpi"] < 300
    assert "pixels" in page["text"] and "megapixels" in page["text"]


def test_a_missing_language_pack_says_how_to_install_it() -> None:
    result = ocr(INVOICE, ("xyz",))
    assert result["needs_ocr"] and result["ocr"]["skipped"] == [1]
    assert "apt-get install tesseract-ocr-xyz" in result["ocr"]["reason"]


def test_page_limit_and_page_time_limit_leave_pages_unread_with_a_reason() -> None:
    limited = ocr(SCANNED / "scan_letter_10p.pdf", ("eng",), max_pages=1)
    assert limited["ocr"]["pages"] == [1] and limited["ocr"]["skipped"] == list(range(2, 11))
    assert "OCR page limit" in limited["pages"][4]["ocr"]["reason"] and limited["pages"][0]["text"]
    hurried = ocr(INVOICE, ("eng",), page_timeout_s=0.05)
    assert (
        hurried["ocr"]["skipped"] == [1] and "took longer than the 0.05 s limit" in hurried["ocr"]["reason"]
    )


async def test_the_pool_child_survives_hostile_scans_and_reads_the_next(tmp_path: Path) -> None:
    pool = ExtractPool(1, PoolLimits(memory_mb=1536))
    await pool.start()
    try:
        (pid,) = pool.child_pids()
        pages: list[tuple[int, int]] = []

        async def on_ocr_page(done: int, total: int) -> None:
            pages.append((done, total))

        job = OcrJob(OcrOptions(languages=("eng",)), str(tmp_path / "layer.pdf"))
        for hostile in ("hugemono.pdf", "enormous.pdf"):
            result = await pool.extract(str(OCRMYPDF / hostile), ocr=job)
            assert result["ocr"]["pages"] or result["ocr"]["reason"], hostile
        result = await pool.extract(str(INVOICE), ocr=job, on_ocr_page=on_ocr_page)
        assert "INV-2091827" in result["pages"][0]["text"] and pages == [(0, 1), (1, 1)]
        assert "INV-2091827" in pdf_text(tmp_path / "layer.pdf", 0)
        assert pool.child_pids() == [pid] and pool.replaced == 0  # the same child read all three
    finally:
        await pool.stop()


async def test_every_ocrmypdf_corpus_file_ends_in_a_result_or_a_reason(tmp_path: Path) -> None:
    """Real scans and hostile files from OCRmyPDF's suite through the pool: each one either yields its
    result (OCR text, or pages left unread with a reason) or fails with a reason; the pool goes on."""
    pool = ExtractPool(1)
    await pool.start()
    outcomes: dict[str, str] = {}
    try:
        for pdf in sorted(OCRMYPDF.glob("*.pdf")):
            try:
                result = await pool.extract(
                    str(pdf), ocr=OcrJob(OcrOptions(languages=("eng",)), str(tmp_path / pdf.name))
                )
            except ExtractError as exc:
                assert exc.reason and exc.message, pdf.name
                outcomes[pdf.name] = f"failed: {exc.reason}"
                continue
            report = result["ocr"] or {"pages": [], "skipped": [], "reason": ""}
            for number in report["skipped"]:  # each page left unread says why
                assert result["pages"][number - 1]["ocr"]["reason"], (pdf.name, number)
            for number in report["pages"]:
                assert result["pages"][number - 1]["ocr"]["dpi"] >= 100, (pdf.name, number)
            assert not report["skipped"] or report["reason"], pdf.name
            outcomes[pdf.name] = f"read {report['pages']}, skipped {report['skipped']}"
        print(outcomes)
        assert "skipped [1]" in outcomes["hugemono.pdf"] and "read [1]" in outcomes["enormous.pdf"]
        for scan in ("c02-22.pdf", "cardinal.pdf", "ccitt.pdf", "jbig2.pdf", "skew.pdf", "francais.pdf"):
            assert outcomes[scan].startswith("read [1"), (scan, outcomes[scan])
        assert pool.child_pids()
    finally:
        await pool.stop()
