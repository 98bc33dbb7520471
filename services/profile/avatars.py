"""Avatar checks and re-encoding: the bytes must *be* a PNG, JPEG or WebP image and nothing else.

A file is accepted only if Pillow recognises one of the three formats from its content, the
claimed size is sane (no decompression bomb), the whole image decodes, and nothing significant
follows the image's own end marker (an image with a PDF or a zip appended is a polyglot and is
refused). What is stored and served is a fresh 256 px encoding, which also drops all metadata.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, ImageOps

from contracts import Invalid, TooLarge, Unsupported
from contracts.profile import AVATAR_CONTENT_TYPES, AVATAR_MAX_BYTES, AVATAR_MAX_PIXELS, AVATAR_SIZE_PX

# Some encoders pad a file with a few zero bytes; more than this after the end marker is refused.
TRAILING_SLACK = 16


def _field(message: str, cls: type[Invalid] | type[Unsupported] = Invalid) -> Invalid | Unsupported:
    return cls(message, [{"field": "avatar", "message": message}])


def sniff_foreign(data: bytes) -> str | None:
    head = data[:1024]
    if head.startswith(b"%PDF") or b"%PDF-" in head:
        return "a PDF"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if head.startswith(b"GIF8"):
        return "a GIF"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "an SVG"
    return None


def image_end(data: bytes, fmt: str) -> int:
    """Offset just past the image's own end marker (so anything after it is extra data)."""
    if fmt == "PNG":
        return _png_end(data)
    if fmt == "JPEG":
        return _jpeg_end(data)
    if fmt == "WEBP":
        (size,) = struct.unpack_from("<I", data, 4)
        return 8 + size + (size & 1)
    raise ValueError(fmt)


def _png_end(data: bytes) -> int:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise ValueError("no IEND chunk")


def _jpeg_end(data: bytes) -> int:
    """Walk the marker segments and entropy-coded scans up to EOI (a search for FF D9 would be fooled
    by an appended file that happens to contain those bytes)."""
    pos, n = 2, len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            raise ValueError("marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:  # start of scan: skip entropy-coded data up to the next real marker
            while pos + 1 < n:
                if data[pos] == 0xFF and data[pos + 1] != 0x00 and not 0xD0 <= data[pos + 1] <= 0xD7:
                    break
                pos += 1
    raise ValueError("no EOI marker")


def process_avatar(data: bytes) -> tuple[bytes, str]:
    """Check `data` and return the re-encoded avatar and its content type, or raise a clear error."""
    if not data:
        raise _field("The avatar file is empty.")
    if len(data) > AVATAR_MAX_BYTES:
        raise TooLarge(
            f"The avatar is {len(data) / 1048576:.1f} MB; the limit is "
            f"{AVATAR_MAX_BYTES // 1048576} MB. Choose a smaller image.",
            {"field": "avatar", "limit_bytes": AVATAR_MAX_BYTES},
        )
    foreign = sniff_foreign(data)
    if foreign:
        raise _field(f"The avatar must be a PNG, JPEG or WebP image; this file is {foreign}.", Unsupported)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=list(AVATAR_CONTENT_TYPES))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _field(
                "The image claims enormous dimensions (a decompression bomb?); it is refused."
            ) from None
        except Exception:
            raise _field(
                "The avatar must be a PNG, JPEG or WebP image; this file is not one of those "
                "(the name does not matter, the content does).",
                Unsupported,
            ) from None
        with im:
            fmt = im.format or ""
            width, height = im.size
            if width * height > AVATAR_MAX_PIXELS or width < 1 or height < 1:
                raise _field(
                    f"The image is {width}×{height} pixels; at most {AVATAR_MAX_PIXELS // 1_000_000} "
                    "megapixels are accepted."
                )
            try:
                im.load()
                end = image_end(data, fmt)
            except Exception:
                raise _field(
                    "The image is damaged or truncated and cannot be decoded; save it again."
                ) from None
            extra = data[end:]
            if len(extra) > TRAILING_SLACK or extra.strip(b"\x00"):
                raise _field(
                    f"The image has {len(extra)} bytes of other data after its end (a file hidden "
                    "inside an image?); save it again as a plain image."
                )
            out = _resize(im, fmt)
    return out, AVATAR_CONTENT_TYPES[fmt]


def _resize(im: Image.Image, fmt: str) -> bytes:
    im = ImageOps.exif_transpose(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha and fmt != "JPEG" else "RGB")
    im = ImageOps.fit(im, (AVATAR_SIZE_PX, AVATAR_SIZE_PX), method=Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    # Saved without exif/icc/text: nothing from the original file survives but its pixels.
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=88, optimize=True)
    elif fmt == "WEBP":
        im.save(buf, "WEBP", quality=85)
    else:
        im.save(buf, "PNG", optimize=True)
    return buf.getvalue()
