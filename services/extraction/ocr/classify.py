"""Which pages need OCR: a page without a usable text layer, seen from pdfium's page objects (no
image is decoded here, so a hostile image costs nothing yet)."""

from __future__ import annotations

import ctypes
import unicodedata
from dataclasses import dataclass
from typing import Any

# A page whose images cover at least this share of it, with fewer usable characters than
# SPARSE_CHARS × that share, holds more than its text layer says: a scan with a stray header line, a
# broken OCR layer. A full A4 page of text has 2,000-4,000 characters; a photo with a caption still
# reads its caption after OCR, since OCR's text only replaces a layer it beats (see `better_text`).
IMAGE_PAGE_SHARE = 0.5
SPARSE_CHARS = 150


@dataclass
class PageContent:
    paths: int = 0
    texts: int = 0
    images: int = 0
    image_share: float = 0.0  # page area covered by images (overlaps counted twice, at most 1)
    largest_image: tuple[int, int] = (0, 0)  # pixel size of the biggest image, from its dictionary
    image_dpi: float = 0.0  # the biggest image's resolution as placed on the page (pixels per inch)

    @property
    def empty(self) -> bool:
        return not (self.paths or self.texts or self.images)


def usable_chars(text: str) -> int:
    """Characters that carry text: not whitespace, not invisible format characters (zero-width space,
    soft hyphen, BOM), not control, private-use or unassigned code points, not U+FFFD (what an
    unmapped glyph becomes)."""
    count = 0
    for ch in text:
        if ch.isspace() or ch == "\ufffd":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn", "Cs"):
            continue
        count += 1
    return count


def page_content(page: Any, max_depth: int = 4) -> PageContent:
    """Counts of path, text and image objects (inside form XObjects too) and the images' extent."""
    import pypdfium2.raw as c

    out = PageContent()
    x0, y0, x1, y1 = page.get_bbox()  # the visible box, in the same (unrotated) space as the objects
    area = max((x1 - x0) * (y1 - y0), 1.0)
    covered = 0.0
    pw, ph = ctypes.c_uint(), ctypes.c_uint()
    left, bottom, right, top = ctypes.c_float(), ctypes.c_float(), ctypes.c_float(), ctypes.c_float()

    def walk(n: int, get: Any, depth: int) -> None:
        nonlocal covered
        for i in range(n):
            obj = get(i)
            kind = c.FPDFPageObj_GetType(obj)
            if kind == c.FPDF_PAGEOBJ_PATH:
                out.paths += 1
            elif kind == c.FPDF_PAGEOBJ_TEXT:
                out.texts += 1
            elif kind == c.FPDF_PAGEOBJ_IMAGE:
                out.images += 1
                # From the image dictionary's /Width and /Height: nothing is decoded.
                pixels = pw.value * ph.value if c.FPDFImageObj_GetImagePixelSize(obj, pw, ph) else 0
                if not c.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
                    continue
                if pixels > out.largest_image[0] * out.largest_image[1]:
                    out.largest_image = (pw.value, ph.value)
                    placed = (right.value - left.value) * (top.value - bottom.value) / 72**2  # square inches
                    out.image_dpi = (pixels / placed) ** 0.5 if placed > 0 else 0.0
                w = min(right.value, x1) - max(left.value, x0)
                h = min(top.value, y1) - max(bottom.value, y0)
                if w > 0 and h > 0:
                    covered += w * h
            elif kind == c.FPDF_PAGEOBJ_FORM and depth < max_depth:
                walk(
                    c.FPDFFormObj_CountObjects(obj), lambda j, o=obj: c.FPDFFormObj_GetObject(o, j), depth + 1
                )

    walk(c.FPDFPage_CountObjects(page.raw), lambda i: c.FPDFPage_GetObject(page.raw, i), 0)
    out.image_share = min(covered / area, 1.0)
    return out


def needs_ocr(text: str, content: PageContent) -> bool:
    """No usable text layer: nothing readable in it (while the page draws something), or far less than
    its images show."""
    chars = usable_chars(text)
    if chars == 0:
        return not content.empty
    return content.image_share >= IMAGE_PAGE_SHARE and chars < SPARSE_CHARS * content.image_share


def better_text(layer_text: str, ocr_text: str) -> bool:
    """Whether OCR's reading should replace the page's own text layer (it holds more text)."""
    return usable_chars(ocr_text) > usable_chars(layer_text)
