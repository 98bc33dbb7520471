"""Scans with known text for the OCR tests: the corpus's own (`corpus/scanned`), and more made the same
way by the corpus's `scan_gen.py` from text PDFs written here with any font (German and Russian need a
Cyrillic-capable one: DejaVu, Debian's fonts-dejavu-core)."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import random
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as c
from PIL import Image

from services.extraction.ocr.reader import OcrOptions
from services.extraction.text.engine import Limits, OcrJob, extract_hybrid
from tests.conftest import CORPUS

SCANNED = CORPUS / "scanned"
SYNTHETIC = CORPUS / "synthetic"
OCRMYPDF = CORPUS / "public" / "ocrmypdf"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@cache
def scan_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan_gen", SCANNED / "scan_gen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def expected_text() -> dict[str, Any]:
    return json.loads((SCANNED / "expected_text.json").read_text())


@cache
def expected_fields() -> dict[str, Any]:
    return json.loads((SYNTHETIC / "expected.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ocr(path: Path, languages: tuple[str, ...], layer: Path | None = None, **options: Any) -> dict[str, Any]:
    """The text engine with OCR on, in this process (the pool runs the same function in its child)."""
    job = OcrJob(OcrOptions(languages=languages, **options), str(layer) if layer else None)
    return extract_hybrid(str(path), Limits(), None, job)


def text_pdf(lines: list[str], target: Path, font: Path = DEJAVU, size: float = 12.0) -> None:
    """An A4 page with these lines as real text in the given TrueType font (embedded)."""
    assert font.exists(), f"{font} is missing: apt-get install fonts-dejavu-core"
    doc = pdfium.PdfDocument.new()
    page = doc.new_page(595, 842)
    data = font.read_bytes()
    buffer = ctypes.create_string_buffer(data, len(data))
    handle = c.FPDFText_LoadFont(
        doc.raw, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8)), len(data), c.FPDF_FONT_TRUETYPE, True
    )
    assert handle, "pdfium could not load the font"
    for i, line in enumerate(lines):
        obj = c.FPDFPageObj_CreateTextObj(doc.raw, handle, size)
        wide = ctypes.create_string_buffer((line + "\0").encode("utf-16-le"))
        assert c.FPDFText_SetText(obj, ctypes.cast(wide, ctypes.POINTER(ctypes.c_ushort)))
        c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 60, 780 - i * size * 1.6)
        c.FPDFPage_InsertObject(page.raw, obj)
    assert c.FPDFPage_GenerateContent(page.raw)
    doc.save(str(target))
    doc.close()


def make_scan(source: Path, target: Path, seed: int = 7, dpi: int = 200, angle: float = 1.2) -> list[str]:
    """`scan_gen.py` on one file: the scanned copy at `target`; returns each page's true text."""
    rnd = random.Random(seed)
    return scan_gen().scan(source, target, rnd, dpi, angle, 12, 60)  # type: ignore[no-any-return]


def turned_copy(source: Path, target: Path, clockwise: int) -> None:
    """An image-only copy of a one-page scan whose image is turned clockwise by 90/180/270° (the page
    looks turned, as a sheet fed sideways or upside down does; no /Rotate that a viewer would undo)."""
    doc = pdfium.PdfDocument(str(source))
    image = doc[0].render(scale=200 / 72, grayscale=True).to_pil()
    doc.close()
    image.rotate(-clockwise, expand=True, fillcolor=255).save(target, "PDF", resolution=200)


def render(path: Path, index: int, dpi: int = 50) -> Image.Image:
    doc = pdfium.PdfDocument(str(path))
    try:
        return doc[index].render(scale=dpi / 72).to_pil()
    finally:
        doc.close()


def pdf_text(path: Path, index: int) -> str:
    doc = pdfium.PdfDocument(str(path))
    try:
        return doc[index].get_textpage().get_text_range()  # type: ignore[no-any-return]
    finally:
        doc.close()
