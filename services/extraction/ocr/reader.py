"""One page of a PDF → its OCR: checks before decoding anything, a quick look (blank? sideways? how
skewed?), one rendering already turned and straightened, ruling lines painted over, recognition, and
the words mapped back onto the page.

Frames: R is the page as displayed (pdfium applies /Rotate) at the reading resolution, P the image
Tesseract reads (R turned by a multiple of 90° and straightened; pdfium draws P directly). A word's box
in P goes back to R through the inverse of that affine map, and from R to the page's points (top-left
origin, as displayed) by the scale, or to the PDF's own user space (for the text layer) by pdfium's
device-to-page mapping.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts.documents import VISION_MAX_PX

from .classify import PageContent
from .preprocess import analyse_layout, otsu_threshold, remove_rules
from .recognize import Reading, Tesseract, version
from .tessdata import Tessdata, install_hint, prepare
from .textlayer import LayerWord

MIN_DPI = 100  # below this, body text is too small to read: a page that large is not OCRed
MIN_SCAN_DPI = 200  # a coarser scan is read enlarged to this
IMAGE_PAGE = 0.5  # a page whose images cover this share of it is a scan: read at the image's resolution
PROBE_DPI = 150  # the quick first rendering that finds skew, sideways text and blank pages
LOW_CONFIDENCE = 60.0  # a reading this poor may be an upside-down page: ask orientation detection
# On Tesseract's own scale ("15 is reasonably confident"); low, since both readings are compared anyway.
OSD_MIN_CONFIDENCE = 2.0
VISION_ATTEMPTS = (
    2  # per page and vision request, for 429 / 5xx / connection errors (then the run is retried)
)


@dataclass(frozen=True)
class OcrOptions:
    """What to OCR, with what, and under which limits; sent with every job, so a change of the Documents
    settings (mode, languages, provider, page limit) applies to the next document. The limits come from the
    worker's environment (`ATRIUM_OCR_*`)."""

    mode: str = "scanned"  # "off", "scanned" (pages without a usable text layer) or "all"
    languages: tuple[str, ...] = ("eng",)
    max_pages: int = 500  # pages OCRed per document; the rest stay without text, said so
    dpi: int = 300
    max_image_megapixels: float = 150.0  # an image larger than this is never decoded
    max_render_megapixels: float = 60.0  # a larger page is rendered at a lower resolution (down to MIN_DPI)
    page_timeout_s: float = 60.0
    text_layer: bool = True  # write the "PDF with text layer"
    # "tesseract", or a vision model's provider ("anthropic", "ollama", "openai_compatible"; see vision.py)
    provider: str = "tesseract"
    model: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    request_timeout_s: float = 60.0
    vision_max_px: int = VISION_MAX_PX

    @property
    def page_limit_s(self) -> float:
        """How long one page may take: Tesseract's limit, or each attempt of a vision model's request plus a
        Retry-After it may ask for (at most 30 s)."""
        if self.provider == "tesseract":
            return self.page_timeout_s
        return self.request_timeout_s * VISION_ATTEMPTS + 35.0


def too_large(number: int, content: PageContent, options: OcrOptions) -> str:
    """Why a page's image is never decoded ("" when it may be): more pixels than the limit."""
    iw, ih = content.largest_image
    if iw * ih <= options.max_image_megapixels * 1e6:
        return ""
    return (
        f"Page {number} holds an image of {iw} × {ih} pixels ({iw * ih / 1e6:.0f} megapixels), more "
        f"than the {options.max_image_megapixels:g}-megapixel limit for OCR; scan it at a lower "
        f"resolution."
    )


@dataclass
class PageOcr:
    number: int
    text: str = ""
    # (text, x0, y0, x1, y1, confidence): boxes in points on the page as displayed, origin top left.
    words: list[tuple[str, float, float, float, float, float]] = field(default_factory=list)
    confidence: float | None = None
    rotation: int = 0  # clockwise degrees the page image was turned by (it was turned back to read it)
    skew: float = 0.0  # degrees it was straightened by (counter-clockwise)
    dpi: int = 0
    width: float = 0.0  # the page as displayed, in points: the frame of the word boxes
    height: float = 0.0
    languages: str = ""
    reason: str = ""  # why the page was not read (then text and words are empty)
    engine: str = ""  # what read it
    ms: dict[str, float] = field(default_factory=dict)  # render, prepare, recognize
    layer: list[LayerWord] = field(default_factory=list)  # the words in PDF user space, for the text layer

    def as_dict(self) -> dict[str, Any]:
        return {
            "confidence": None if self.confidence is None else round(self.confidence, 1),
            "rotation": self.rotation,
            "skew": self.skew,
            "dpi": self.dpi,
            "width": round(self.width, 2),
            "height": round(self.height, 2),
            "languages": self.languages,
            "reason": self.reason,
            "engine": self.engine,
            "word_boxes": bool(self.words),
            "words": [
                {
                    "text": t,
                    "box": [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)],
                    "conf": round(cf, 1),
                }
                for t, x0, y0, x1, y1, cf in self.words
            ],
        }


def _turn_matrix(w: int, h: int, ccw: int) -> tuple[np.ndarray, int, int]:
    """The affine map of turning a w×h image counter-clockwise by 0/90/180/270°, and the new size."""
    if ccw == 90:
        return np.array([[0, 1, 0], [-1, 0, w], [0, 0, 1]], float), h, w
    if ccw == 180:
        return np.array([[-1, 0, w], [0, -1, h], [0, 0, 1]], float), w, h
    if ccw == 270:
        return np.array([[0, -1, h], [1, 0, 0], [0, 0, 1]], float), h, w
    return np.eye(3), w, h


def turn(gray: np.ndarray, ccw: int) -> tuple[np.ndarray, np.ndarray]:
    """The image turned counter-clockwise by a multiple of 90° (exact), and the map from old to new pixels."""
    matrix, _, _ = _turn_matrix(gray.shape[1], gray.shape[0], ccw % 360)
    k = (ccw % 360) // 90
    return (np.ascontiguousarray(np.rot90(gray, k)) if k else gray), matrix


def _straighten_matrix(w: int, h: int, ccw_deg: float) -> tuple[np.ndarray, int, int]:
    """The map rotating a w×h image counter-clockwise by a small angle about its centre onto a canvas
    grown to hold all of it, and that canvas's size."""
    if abs(ccw_deg) < 0.1:  # under a pixel per 600: not worth it
        return np.eye(3), w, h
    a = math.radians(ccw_deg)
    cos, sin = math.cos(a), math.sin(a)
    nw = int(math.ceil(abs(w * cos) + abs(h * sin)))
    nh = int(math.ceil(abs(w * sin) + abs(h * cos)))
    linear = np.array([[cos, sin], [-sin, cos]])  # counter-clockwise on screen, where y points down
    forward = np.eye(3)
    forward[:2, :2] = linear
    forward[:2, 2] = np.array([nw / 2, nh / 2]) - linear @ np.array([w / 2, h / 2])
    return forward, nw, nh


def _apply(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
    px, py, _ = matrix @ np.array([x, y, 1.0])
    return float(px), float(py)


def device_to_page(page: Any, width: int, height: int) -> np.ndarray:
    """pdfium's map from the pixels of a width×height render of the page (as displayed) to its user space."""
    import ctypes

    import pypdfium2.raw as c

    px, py = ctypes.c_double(), ctypes.c_double()
    points = []
    for dx, dy in ((0, 0), (width, 0), (0, height)):
        c.FPDF_DeviceToPage(page.raw, 0, 0, width, height, 0, dx, dy, px, py)
        points.append((px.value, py.value))
    (x0, y0), (x1, y1), (x2, y2) = points
    return np.array(
        [[(x1 - x0) / width, (x2 - x0) / height, x0], [(y1 - y0) / width, (y2 - y0) / height, y0], [0, 0, 1]]
    )


def render(page: Any, to_device: np.ndarray, width: int, height: int) -> np.ndarray:
    """The page drawn in 8-bit grey onto a white width×height canvas through `to_device` (user space →
    pixels): turning and straightening happen in the one rendering pass, with no resampling after it."""
    import ctypes

    import pypdfium2.raw as c

    # pdfium first applies the page's display matrix for a canvas of its size in whole points (its
    # FX_RECT truncates), then this one: so it gets ours with that display step undone.
    page_w, page_h = page.get_size()
    m = to_device @ device_to_page(page, max(int(page_w), 1), max(int(page_h), 1))
    bitmap = c.FPDFBitmap_CreateEx(width, height, c.FPDFBitmap_Gray, None, 0)
    if not bitmap:
        raise MemoryError(f"no memory for a {width} × {height} page image")
    try:
        c.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xFFFFFFFF)
        matrix = c.FS_MATRIX(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])
        clip = c.FS_RECTF(0, 0, width, height)
        c.FPDF_RenderPageBitmapWithMatrix(
            bitmap, page.raw, ctypes.byref(matrix), ctypes.byref(clip), c.FPDF_ANNOT
        )
        stride = c.FPDFBitmap_GetStride(bitmap)
        pixels = ctypes.cast(c.FPDFBitmap_GetBuffer(bitmap), ctypes.POINTER(ctypes.c_uint8))
        return np.ctypeslib.as_array(pixels, shape=(height, stride))[:, :width].copy()
    finally:
        c.FPDFBitmap_Destroy(bitmap)


def scan_dpi(content: PageContent, options: OcrOptions) -> float:
    """The resolution a page is read at: a scan's own (between MIN_SCAN_DPI and `options.dpi`: resampling
    a 200 dpi scan up to 300 adds no detail, and read as it is it gave more words on corpus/scanned, in
    two thirds of the time), otherwise `options.dpi`."""
    if content.image_share >= IMAGE_PAGE and content.image_dpi > 0:
        return min(max(content.image_dpi, MIN_SCAN_DPI), float(options.dpi))
    return float(options.dpi)


class PageReader:
    """Reads pages with Tesseract; lives as long as the pool child (engines stay loaded)."""

    def __init__(self) -> None:
        self._tesseract: Tesseract | None = None
        self._tessdata: dict[tuple[str, ...], Tessdata] = {}

    def close(self) -> None:
        if self._tesseract is not None:
            self._tesseract.close()
            self._tesseract = None

    @staticmethod
    def engine() -> str:
        return version()

    def tessdata(self, languages: tuple[str, ...]) -> Tessdata:
        found = self._tessdata.get(languages)
        if found is None:
            found = self._tessdata[languages] = prepare(languages)
        return found

    def unavailable(self, languages: tuple[str, ...]) -> str:
        """Why no page can be read with these languages ("" when at least one is installed)."""
        try:
            import tesserocr  # noqa: F401
        except ImportError as exc:
            return (
                f"The OCR engine is not installed ({exc}): run "
                "`.venv/bin/pip install --require-hashes -r requirements.lock`."
            )
        data = self.tessdata(languages)
        if data.languages:
            return ""
        wanted = ", ".join(languages) or "none"
        hints = "; ".join(install_hint(lang) for lang in data.missing) or "name at least one language"
        return f"No OCR language model is installed for {wanted}: {hints}."

    def _engine(self, data: Tessdata) -> Tesseract:
        if self._tesseract is None or self._tesseract.tessdata != data.path:
            self.close()
            self._tesseract = Tesseract(data.path)
        return self._tesseract

    def read(self, page: Any, number: int, content: PageContent, options: OcrOptions) -> PageOcr:
        width, height = page.get_size()
        out = PageOcr(number=number, width=width, height=height, engine=self.engine())
        if reason := too_large(number, content, options):
            out.reason = reason
            return out
        dpi = scan_dpi(content, options)
        pixels = (width * dpi / 72) * (height * dpi / 72)
        if pixels > options.max_render_megapixels * 1e6:
            dpi *= math.sqrt(options.max_render_megapixels * 1e6 / pixels)
        if dpi < MIN_DPI:
            out.reason = (
                f"Page {number} measures {width / 72:.0f} × {height / 72:.0f} inches: too large to read at "
                f"{MIN_DPI} dpi within the {options.max_render_megapixels:g}-megapixel limit for OCR."
            )
            return out
        data = self.tessdata(options.languages)
        if not data.languages:
            out.reason = self.unavailable(options.languages)
            return out
        out.dpi, out.languages = round(dpi), "+".join(data.languages)
        tesseract = self._engine(data)

        # A quick rendering finds blank pages, sideways text and the skew; then the page is rendered once
        # more at full resolution, already turned and straightened.
        started = time.perf_counter()
        probe_dpi = min(PROBE_DPI, dpi)
        pw, ph = max(round(width * probe_dpi / 72), 1), max(round(height * probe_dpi / 72), 1)
        probe = render(page, np.linalg.inv(device_to_page(page, pw, ph)), pw, ph)
        out.ms["render"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        threshold = otsu_threshold(probe)
        layout = analyse_layout(probe, threshold)
        if layout.ink < 1e-4:  # blank: nothing to read
            out.ms["prepare"] = (time.perf_counter() - started) * 1000
            return out
        ccw = 0
        if layout.sideways:
            found = tesseract.orientation(probe, round(probe_dpi))
            ccw = found[0] if found and found[0] in (90, 270) else 90
            layout = analyse_layout(turn(probe, ccw)[0], threshold)
        out.ms["prepare"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        w, h = max(round(width * dpi / 72), 1), max(round(height * dpi / 72), 1)
        to_user = device_to_page(page, w, h)  # R → user space
        turned, tw, th = _turn_matrix(w, h, ccw)
        straightened, sw, sh = _straighten_matrix(tw, th, layout.skew_deg)
        matrix = straightened @ turned  # R → P
        prepared = render(page, matrix @ np.linalg.inv(to_user), sw, sh)
        out.ms["render"] += (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        prepared = remove_rules(prepared, out.dpi, threshold)
        out.ms["prepare"] += (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        reading = tesseract.read(prepared, out.dpi, out.languages, options.page_timeout_s)
        if reading.confidence < LOW_CONFIDENCE:
            # Upside down (or turned the other way than guessed)? Orientation detection says, and the
            # better of the two readings is kept.
            found = tesseract.orientation(prepared, out.dpi)
            if found and found[0] and found[1] >= OSD_MIN_CONFIDENCE:
                again, more = turn(prepared, found[0])
                second = tesseract.read(again, out.dpi, out.languages, options.page_timeout_s)
                if second.score > reading.score:
                    reading, matrix, ccw = second, more @ matrix, (ccw + found[0]) % 360
        out.ms["recognize"] = (time.perf_counter() - started) * 1000

        out.rotation, out.skew = ccw, layout.skew_deg
        self._place(out, reading, matrix, to_user, 72.0 / dpi)
        return out

    @staticmethod
    def _place(out: PageOcr, reading: Reading, matrix: np.ndarray, to_user: np.ndarray, pt: float) -> None:
        """Words from prepared-image pixels to page points (boxes) and to user space (text layer)."""
        back = np.linalg.inv(matrix)
        to_page = to_user @ back
        out.text = reading.text
        out.confidence = reading.confidence if reading.words else None
        words = reading.words
        for i, word in enumerate(words):
            x0, y0, x1, y1 = word.box
            corners = [_apply(back, x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
            xs, ys = [p[0] * pt for p in corners], [p[1] * pt for p in corners]
            out.words.append((word.text, min(xs), min(ys), max(xs), max(ys), word.conf))
            # In the text layer a word reaches to the next one on its line, with a space, so that text
            # taken from the PDF has its word gaps.
            following = words[i + 1] if i + 1 < len(words) and words[i + 1].line == word.line else None
            end = following.box[0] if following and following.box[0] > x1 else x1
            text = word.text + (" " if following else "")
            origin = _apply(to_page, x0, y1)
            right = _apply(to_page, end, y1)
            top = _apply(to_page, x0, y0)
            out.layer.append(
                LayerWord(
                    text,
                    origin,
                    (right[0] - origin[0], right[1] - origin[1]),
                    (top[0] - origin[0], top[1] - origin[1]),
                )
            )
