"""The "PDF with text layer": a copy of the original whose OCRed pages carry the recognised words as
invisible text (render mode 3) over the unchanged page, so any viewer can search and copy them
(what OCRmyPDF's output and paperless-ngx's archive version are). The original is never written.

pdfium adds the text objects to the page (its content generator appends a new content stream and
leaves the existing ones as they are) and writes the copy. The font is Tesseract's "glyphless" font
(every glyph empty), loaded as a CID font whose codes are Unicode code points with an identity
ToUnicode map, as Tesseract's own PDF renderer does: text extraction then gives back exactly the
recognised characters, in any script.
"""

from __future__ import annotations

import base64
import ctypes
from dataclasses import dataclass
from typing import Any

# Tesseract's tessdata/pdf.ttf (GlyphLessFont, Apache-2.0, © Google / the Tesseract authors), 572 bytes.
GLYPHLESS_FONT = base64.b64decode(
    "AAEAAAAKAIAAAwAgT1MvMlbeyJQAAAEoAAAAYGNtYXAACgA0AAABkAAAAB5nbHlmFSJBJAAAAbgAAAAYaGVhZAt48WUAAACsAAAA"
    "NmhoZWEMAgQCAAAA5AAAACRobXR4BAAAAAAAAYgAAAAIbG9jYQAMAAAAAAGwAAAABm1heHAABAAFAAABCAAAACBuYW1l8usW2gAA"
    "AdAAAABLcG9zdAABAAEAAAIcAAAAIAABAAAAAQAAsJRxEF8PPPUEBwgAAAAAAM+a/G4AAAAA1MOn8gAAAAAEAAgAAAAAEAACAAAA"
    "AAAAAAEAAAgA//8AAAQAAAAAAAQAAAEAAAAAAAAAAAAAAAAAAAACAAEAAAACAAQAAQAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAwAA"
    "AZAABQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAUAAQABAAAAAAAAAAAAAAAAAAAAAAAAAAAAR09PRwBAAAAAAAAB//8AAAABAAGA"
    "AAAAAAAAAAAAAAAAAAABAAAAAAAABAAAAAAAAAIAAQAAAAAAFAADAAAAAAAUAAYACgAAAAAAAAAAAAAAAAAMAAAAAQAAAAAEAAgA"
    "AAMAADEhESEEAPwACAAAAAADACoAAAADAAAABQAWAAAAAQAAAAAABQALABYAAwABBAkABQAWAAAAVgBlAHIAcwBpAG8AbgAgADEA"
    "LgAwVmVyc2lvbiAxLjAAAAEAAAAAAAAAAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAA="
)

IDENTITY_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""
# Every code (a Unicode code point) draws glyph 1, the font's one empty glyph.
CID_TO_GID = b"\x00\x01" * 65536


@dataclass(frozen=True)
class LayerWord:
    """A word placed in the page's own (unrotated) user space: its baseline starts at `origin`, runs
    along `advance` (the whole width it should span) and its height is `up`."""

    text: str
    origin: tuple[float, float]
    advance: tuple[float, float]
    up: tuple[float, float]


def _codes(text: str) -> list[int]:
    # Two-byte codes: characters beyond the Basic Multilingual Plane become U+FFFD.
    return [ord(ch) if ord(ch) <= 0xFFFF else 0xFFFD for ch in text]


def write_text_layer(source: str, target: str, pages: dict[int, list[LayerWord]]) -> None:
    """Copy `source` to `target` with the words of each 1-based page in `pages` as invisible text."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    doc = pdfium.PdfDocument(source)
    keep: list[Any] = []  # buffers pdfium reads from until the document is saved
    try:
        font_data = ctypes.create_string_buffer(GLYPHLESS_FONT, len(GLYPHLESS_FONT))
        gid_map = ctypes.create_string_buffer(CID_TO_GID, len(CID_TO_GID))
        keep += [font_data, gid_map]
        font = c.FPDFText_LoadCidType2Font(
            doc.raw,
            ctypes.cast(font_data, ctypes.POINTER(ctypes.c_uint8)),
            len(GLYPHLESS_FONT),
            IDENTITY_TO_UNICODE,
            ctypes.cast(gid_map, ctypes.POINTER(ctypes.c_uint8)),
            len(CID_TO_GID),
        )
        if not font:
            raise RuntimeError("pdfium could not load the text layer's font")
        left, bottom, right, top = (ctypes.c_float() for _ in range(4))
        for number, words in sorted(pages.items()):
            if not words:
                continue
            page = doc[number - 1]
            try:
                for word in words:
                    codes = _codes(word.text)
                    if not codes:
                        continue
                    obj = c.FPDFPageObj_CreateTextObj(doc.raw, font, 1.0)
                    array = (ctypes.c_uint32 * len(codes))(*codes)
                    if not obj or not c.FPDFText_SetCharcodes(obj, array, len(codes)):
                        continue
                    c.FPDFTextObj_SetTextRenderMode(obj, c.FPDF_TEXTRENDERMODE_INVISIBLE)
                    # The text's own extent at size 1 from the origin, stretched onto the word's box.
                    c.FPDFPageObj_GetBounds(obj, left, bottom, right, top)
                    natural_w = max(right.value - left.value, 1e-3)
                    natural_h = max(top.value - bottom.value, 1e-3)
                    (ax, ay), (ux, uy), (ox, oy) = word.advance, word.up, word.origin
                    c.FPDFPageObj_Transform(
                        obj, ax / natural_w, ay / natural_w, ux / natural_h, uy / natural_h, ox, oy
                    )
                    c.FPDFPage_InsertObject(page.raw, obj)
                if not c.FPDFPage_GenerateContent(page.raw):
                    raise RuntimeError(f"pdfium could not write the text layer of page {number}")
            finally:
                page.close()
        # A full save (not incremental: pdfium's incremental save rewrites every object of a file with
        # object streams, doubling it); the page streams and images are copied as they are.
        doc.save(target)
    finally:
        doc.close()
        del keep
