"""An uploaded image (what phone scanning apps and office scanners produce: JPEG, PNG, TIFF) → a PDF with one
page per image (a multi-page TIFF: one per frame), which the rest of the pipeline reads like any scan. Runs
in the pool child, under its memory and time limits.

Every frame's pixel size is read from its header and checked against the limit before anything is decoded.
A JPEG goes into the PDF as it is (no decoding, no second lossy compression), turned by the page's /Rotate
when its EXIF orientation says the camera was held sideways; PNG and TIFF are decoded (bounded by the same
limit) and stored losslessly (Flate). The page size follows the image's resolution when it is plausible for a
document, and otherwise makes its long side that of an A4 page (phone photos say 72 dpi).
"""

from __future__ import annotations

import warnings
from typing import Any

from contracts.documents import FailureReason

MIN_DOC_INCHES = 2.0  # a stated resolution that makes the page smaller or larger than this is not believed
MAX_DOC_INCHES = 17.0  # (A3's long side is 16.5 in)
A4_LONG_INCHES = 11.69
# EXIF orientation → the clockwise turn a viewer applies (the mirrored ones are decoded and transposed).
EXIF_TURN = {1: 0, 3: 180, 6: 90, 8: 270}


class ImageError(Exception):
    def __init__(self, reason: FailureReason, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def page_inches(width: int, height: int, dpi: Any) -> tuple[float, float]:
    """The page size for an image: its own resolution if that gives a document-sized page, else A4-long."""
    try:
        x_dpi, y_dpi = (float(dpi[0]), float(dpi[1])) if dpi else (0.0, 0.0)
    except (TypeError, ValueError, IndexError):
        x_dpi = y_dpi = 0.0
    if x_dpi > 0 and y_dpi > 0:
        w_in, h_in = width / x_dpi, height / y_dpi
        if MIN_DOC_INCHES <= max(w_in, h_in) <= MAX_DOC_INCHES:
            return w_in, h_in
    scale = A4_LONG_INCHES / max(width, height)
    return width * scale, height * scale


def image_to_pdf(source: str, target: str, max_megapixels: float, max_pages: int) -> int:
    """Write the image at `source` as a PDF to `target`; returns its page count. `ImageError` (`too_large`,
    `too_many_pages`, `unreadable`) says what is wrong with it."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = int(max_megapixels * 1e6)
    # Each frame's size is checked below before it is decoded (Pillow's own check would refuse the file
    # already when it is opened, in words of its own).
    Image.MAX_IMAGE_PIXELS = None
    pdf = pdfium.PdfDocument.new()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a broken EXIF block: the pixels may still be fine
            try:
                image = Image.open(source, formats=["JPEG", "PNG", "TIFF"])
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                raise ImageError("unreadable", f"The image cannot be read ({exc}).") from None
            with image:
                frames = getattr(image, "n_frames", 1)
                if frames > max_pages:
                    raise ImageError(
                        "too_many_pages", f"The image has {frames} pages; the limit is {max_pages}."
                    )
                for index in range(frames):
                    image.seek(index)
                    width, height = image.size
                    if width * height > limit:
                        raise ImageError(
                            "too_large",
                            f"Page {index + 1} of the image is {width} × {height} pixels "
                            f"({width * height / 1e6:.0f} megapixels), more than the {max_megapixels:g}-"
                            "megapixel limit: scan it at a lower resolution.",
                        )
                    try:
                        _add_page(pdf, image, source, ImageOps)
                    except (OSError, SyntaxError, ValueError) as exc:
                        raise ImageError(
                            "unreadable", f"Page {index + 1} of the image cannot be decoded ({exc})."
                        ) from None
        pdf.save(target)
        return frames
    finally:
        pdf.close()


def _add_page(pdf: Any, image: Any, source: str, image_ops: Any) -> None:
    import pypdfium2 as pdfium

    turn = 0
    orientation = image.getexif().get(0x0112, 1) if image.format == "JPEG" else 1
    width, height = image.size
    w_in, h_in = page_inches(width, height, image.info.get("dpi"))
    obj = pdfium.PdfImage.new(pdf)
    if image.format == "JPEG" and orientation in EXIF_TURN and image.mode in ("L", "RGB"):
        obj.load_jpeg(source, inline=True)  # the file's own bytes: nothing decoded, nothing recompressed
        turn = EXIF_TURN[orientation]
    else:
        frame = image_ops.exif_transpose(image) if image.format == "JPEG" else image
        width, height = frame.size
        w_in, h_in = page_inches(width, height, image.info.get("dpi"))
        obj.set_bitmap(pdfium.PdfBitmap.from_pil(_displayable(frame)))
    w_pt, h_pt = w_in * 72, h_in * 72
    page = pdf.new_page(w_pt, h_pt)
    try:
        obj.set_matrix(pdfium.PdfMatrix().scale(w_pt, h_pt))
        page.insert_obj(obj)
        page.gen_content()
        if turn:
            page.set_rotation(turn)
    finally:
        page.close()


def _displayable(frame: Any) -> Any:
    """Grey or RGB, which a PDF image and pdfium's bitmaps hold (bilevel fax pages become grey; Flate keeps
    them small)."""
    from PIL import Image

    mode = frame.mode
    if mode in ("L", "RGB"):
        return frame
    if mode in ("1", "LA", "La"):
        return frame.convert("L")
    if mode.startswith("I") or mode == "F":  # 16- or 32-bit grey: scale down to 8 bits
        return frame.convert("I").point(lambda v: v / 256).convert("L")
    if mode in ("RGBA", "P", "PA", "RGBa"):
        rgba = frame.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return frame.convert("RGB")  # CMYK, YCbCr, LAB…
