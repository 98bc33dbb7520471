"""What an uploaded file is, from its first bytes (never its name): the gateway refuses anything else, and
the text worker decides from the same bytes whether the original is a PDF or an image to turn into one."""

from __future__ import annotations

from contracts.documents import MediaType

SNIFF_BYTES = 1024  # a valid PDF may carry junk before `%PDF-`; readers accept it within the first KB
PDF_MAGIC = b"%PDF-"
IMAGE_MAGIC: tuple[tuple[bytes, MediaType], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),  # little-endian TIFF
    (b"MM\x00*", "image/tiff"),  # big-endian TIFF
)
# Formats people try that are not accepted, named in the refusal so they know what to convert.
KNOWN_OTHERS = (
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a WebP image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
)


def sniff(head: bytes) -> MediaType | None:
    """The media type of a file whose first bytes are `head` (at least `SNIFF_BYTES` when it has as many)."""
    for magic, media_type in IMAGE_MAGIC:
        if head.startswith(magic):
            return media_type
    if PDF_MAGIC in head[:SNIFF_BYTES]:
        return "application/pdf"
    return None


def describe(head: bytes) -> str:
    """A few words for a refused file: what it looks like."""
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "a HEIC image (export it as JPEG)"
    for magic, name in KNOWN_OTHERS:
        if head.startswith(magic):
            return name
    return "not a PDF, JPEG, PNG or TIFF file"


IMAGE_HEAD_BYTES = 64 * 1024  # a JPEG's frame header usually follows its EXIF block within this much
DEFAULT_MAX_IMAGE_MEGAPIXELS = 150.0


def max_image_megapixels() -> float:
    """The largest image ever decoded (`ATRIUM_OCR_MAX_IMAGE_MP`): the gateway refuses a larger uploaded image,
    the text worker never decodes one (a page holding one is not OCRed)."""
    import os

    return float(os.environ.get("ATRIUM_OCR_MAX_IMAGE_MP", DEFAULT_MAX_IMAGE_MEGAPIXELS))


def image_size(head: bytes, media_type: MediaType) -> tuple[int, int] | None:
    """An image's pixel size from its header alone (nothing is decoded), or None when the header is not all in
    `head` (a TIFF's directory may sit at the end of the file). Raises ValueError when the header in `head`
    is broken."""
    import io
    import struct
    import warnings

    from PIL import Image, UnidentifiedImageError

    fmt = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}[media_type]
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the caller judges the size (no await here)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a truncated EXIF block: only the size matters here
            with Image.open(io.BytesIO(head), formats=[fmt]) as image:
                width, height = image.size
    except (UnidentifiedImageError, SyntaxError, OSError, EOFError, ValueError, struct.error) as exc:
        # A PNG's header is its first 33 bytes: if they do not parse, the file is broken. Others may just
        # need more bytes than the head holds.
        if media_type == "image/png" or len(head) < IMAGE_HEAD_BYTES:
            raise ValueError(f"its {fmt} header cannot be read ({type(exc).__name__})") from None
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if width <= 0 or height <= 0:
        raise ValueError(f"its {fmt} header says it is {width} × {height} pixels")
    return width, height
