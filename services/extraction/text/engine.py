"""PDF → text, tables, metadata. Runs inside a pool child (see `pool.py`), never in the worker itself.

The hybrid engine ("pdfium+plumber"):
- pypdfium2 gives page count, metadata and the plain text of every page (~1 ms/page).
- Tables use pdfplumber's default finder, which builds tables from ruling lines only. Its edge →
  intersection → cell → table steps run on pdfium's path geometry (`page_edges`, `table_cell_groups`),
  which costs no text parsing: a page whose paths form no cells has no table (on the corpus this
  never missed a table pdfplumber found). Where the paths are exactly straight lines on an unrotated
  page with upright text, those cells are pdfplumber's own, and pdfplumber's `Table.extract` fills
  them with pdfium's characters (`pdfium_tables`). Otherwise (curves, form XObjects, rotated text)
  pdfplumber parses the page as usual — pdfplumber's cost is that parse (~40 µs per character).
- Where the engines disagree on text: a page whose pdfium text has fewer visible characters than
  the page has text objects lost its text in pdfium (seen on a scanned CJK page with a text layer),
  so that page's text comes from pdfplumber. Table cells filled from pdfium match pdfplumber's on
  87 of 93 table pages of the corpus; the rest differ in word gaps (pdfium's are kept, except inside
  digit runs and CJK text, where pdfplumber joins), in fake-bold duplicates (pdfplumber repeats
  them) and in private-use icon glyphs (pdfium drops them). Measured in bench/bench_extract_engines.py.

Every failure is an `ExtractError` with a `FailureReason` and the parser's message.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from contracts.documents import FailureReason
from services.extraction.ai.providers.base import ProviderError
from services.extraction.ocr.classify import PageContent, better_text, needs_ocr, page_content
from services.extraction.ocr.reader import OcrOptions, PageOcr, PageReader
from services.extraction.ocr.recognize import RecognitionTimeout
from services.extraction.ocr.textlayer import LayerWord, write_text_layer

ENGINE_NAME = "pdfium+plumber"


class ExtractError(Exception):
    def __init__(self, reason: FailureReason, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class PageTimeout(BaseException):
    """Raised by SIGALRM inside a page; BaseException so parser code that catches Exception lets it pass."""


@dataclass(frozen=True)
class Limits:
    max_pages: int = 2000
    page_timeout_s: float = 15.0
    pdfium_tables: bool = True  # fill table cells from pdfium's characters where the geometry is exact


@dataclass(frozen=True)
class TextCaps:
    """Characters the child hands back, per page (text and table cells each) and per document (issue 13
    item 14): a 50 MB PDF can expand to ~200 M characters, which would go through pickle, the Object
    Store and the docs service. A dense printed page holds ~5,000; what is over a cap is cut, and the
    result says which pages were (`text_capped`)."""

    page_chars: int = 100_000
    document_chars: int = 5_000_000


def cap_text(pages: list[PageOut], caps: TextCaps) -> list[int]:
    """Cut each page's text and table cells to the page cap, and the whole to the document cap; the
    numbers of the pages that lost something."""
    left = caps.document_chars
    capped: list[int] = []
    for p in pages:
        budget = min(caps.page_chars, max(0, left))
        cut = len(p.text) > budget
        p.text = p.text[:budget]
        left -= len(p.text)
        cell_budget = min(caps.page_chars, max(0, left))
        for table in p.tables:
            for row in table:
                for i, cell in enumerate(row):
                    if cell is None:
                        continue
                    if len(cell) > cell_budget:
                        row[i], cut = cell[:cell_budget], True
                    cell_budget -= len(row[i] or "")
                    left -= len(row[i] or "")
        if cut:
            capped.append(p.number)
    return capped


@dataclass
class PageOut:
    number: int
    text: str
    tables: list[list[list[str | None]]] = field(default_factory=list)
    text_engine: str = "pdfium"  # or "pdfplumber", or "ocr"
    table_engine: str = "pdfplumber"
    tables_skipped: bool = False  # the page hit its time limit while looking for tables
    ocr: dict[str, Any] | None = None  # `PageOcr` of a page that needed OCR

    def as_dict(self) -> dict[str, Any]:
        out = {"number": self.number, "text": self.text, "tables": self.tables}
        if self.ocr is not None:
            out["ocr"] = self.ocr
        return out


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """pdfplumber wraps parser errors in its own exception types; look through the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class page_time_limit:
    """SIGALRM-based wall-clock limit for pure-Python work on one page (main thread only)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self) -> None:
        def fire(_sig: int, _frame: Any) -> None:
            raise PageTimeout()

        self.previous = signal.signal(signal.SIGALRM, fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *_: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def clean_text(text: str) -> str:
    """Unix line ends, no trailing blanks, no NUL (Postgres text refuses it), no lone surrogates (JSON does)."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n").replace("\x00", "")


def visible_chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def parse_pdf_date(raw: str | None) -> datetime | None:
    """`D:YYYYMMDDHHmmSS+HH'mm'` with any tail missing; None when it is not a date."""
    if not raw:
        return None
    s = raw.strip()
    if s.startswith("D:"):
        s = s[2:]
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    if len(digits) < 4:
        return None
    digits = digits[:14]
    parts = [int(digits[0:4])]
    for start, default in ((4, 1), (6, 1), (8, 0), (10, 0), (12, 0)):
        chunk = digits[start : start + 2]
        parts.append(int(chunk) if len(chunk) == 2 else default)
    tz: timezone | None = UTC
    rest = s[len(digits) :]
    if rest[:1] in ("+", "-"):
        sign = 1 if rest[0] == "+" else -1
        nums = "".join(c for c in rest[1:] if c.isdigit())
        hh, mm = int(nums[0:2] or 0), int(nums[2:4] or 0)
        if hh < 24 and mm < 60:
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
    try:
        year, month, day, hour, minute, second = parts
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def _metadata(raw: dict[str, Any]) -> dict[str, Any]:
    def val(key: str) -> str | None:
        v = raw.get(key)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        v = str(v).strip().replace("\x00", "") if v is not None else ""
        return v[:1000] or None

    created = parse_pdf_date(val("CreationDate"))
    return {
        "title": val("Title"),
        "author": val("Author"),
        "subject": val("Subject"),
        "producer": val("Producer"),
        "creator": val("Creator"),
        "creation_date": created.isoformat() if created else None,
    }


def _pdfium_open(path: str) -> Any:
    import pypdfium2 as pdfium

    try:
        # pdfium tries the empty user password by itself, so such files open like any other.
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractError(
                "encrypted", "The PDF is encrypted with a password; remove the password and upload it again."
            ) from None
        raise


def _edge(x0: float, y0: float, x1: float, y1: float, orientation: str) -> dict[str, Any]:
    x0, x1 = min(x0, x1), max(x0, x1)
    top, bottom = min(y0, y1), max(y0, y1)
    return {
        "object_type": "path_edge",
        "x0": x0,
        "x1": x1,
        "top": top,
        "bottom": bottom,
        "doctop": top,
        "y0": top,
        "y1": bottom,
        "width": x1 - x0,
        "height": bottom - top,
        "orientation": orientation,
    }


def _add_edges(edges: list[dict[str, Any]], p: tuple[float, float], q: tuple[float, float]) -> bool:
    """Add the edge p→q; False when it is not axis-aligned (then every edge it might make is added)."""
    (x0, y0), (x1, y1) = p, q
    if x0 == x1 and y0 == y1:
        return True
    if x0 == x1:
        edges.append(_edge(x0, y0, x1, y1, "v"))
    elif y0 == y1:
        edges.append(_edge(x0, y0, x1, y1, "h"))
    else:
        edges += [
            _edge(x0, y0, x1, y0, "h"),
            _edge(x0, y1, x1, y1, "h"),
            _edge(x0, y0, x0, y1, "v"),
            _edge(x1, y0, x1, y1, "v"),
        ]
        return False
    return True


def page_edges(page: Any, max_segments: int = 5000) -> tuple[list[dict[str, Any]], bool] | None:
    """The axis-aligned edges of the page's top-level paths from pdfium, flipped to pdfplumber's
    top-down frame, and whether they are exactly pdfplumber's (no diagonal or curved segment, which
    pdfplumber treats in its own ways; here they become a superset). None when it cannot cheaply
    tell: paths inside form XObjects, or very many segments."""
    import ctypes

    import pypdfium2.raw as c

    edges: list[dict[str, Any]] = []
    x, y = ctypes.c_float(), ctypes.c_float()
    m = c.FS_MATRIX()
    height = page.get_height()
    segments = 0
    exact = True
    for i in range(c.FPDFPage_CountObjects(page.raw)):
        obj = c.FPDFPage_GetObject(page.raw, i)
        kind = c.FPDFPageObj_GetType(obj)
        if kind == c.FPDF_PAGEOBJ_FORM:
            return None
        if kind != c.FPDF_PAGEOBJ_PATH:
            continue
        c.FPDFPageObj_GetMatrix(obj, m)  # path points are in object space
        n = c.FPDFPath_CountSegments(obj)
        segments += n
        if segments > max_segments:
            return None
        start = prev = None
        for k in range(n):
            seg = c.FPDFPath_GetPathSegment(obj, k)
            c.FPDFPathSegment_GetPoint(seg, x, y)
            pt = (m.a * x.value + m.c * y.value + m.e, height - (m.b * x.value + m.d * y.value + m.f))
            kind = c.FPDFPathSegment_GetType(seg)
            if prev is None or kind == c.FPDF_SEGMENT_MOVETO:
                start = prev = pt
                continue
            exact = exact and kind == c.FPDF_SEGMENT_LINETO
            exact = _add_edges(edges, prev, pt) and exact
            prev = pt
            if c.FPDFPathSegment_GetClose(seg) and start is not None:
                exact = _add_edges(edges, prev, start) and exact
                prev = start
    return edges, exact


def table_cell_groups(edges: list[dict[str, Any]]) -> list[list[tuple[float, float, float, float]]]:
    """pdfplumber's default ("lines") table finder on given edges: its own snap/join, intersection,
    cell and table steps, without parsing the page's text."""
    from pdfplumber import utils
    from pdfplumber.table import (
        TableSettings,
        cells_to_tables,
        edges_to_intersections,
        intersections_to_cells,
        merge_edges,
    )

    s = TableSettings.resolve(None)
    edges = utils.filter_edges(edges, min_length=s.edge_min_length_prefilter)
    edges = merge_edges(
        edges,
        snap_x_tolerance=s.snap_x_tolerance,
        snap_y_tolerance=s.snap_y_tolerance,
        join_x_tolerance=s.join_x_tolerance,
        join_y_tolerance=s.join_y_tolerance,
    )
    edges = utils.filter_edges(edges, min_length=s.edge_min_length)
    intersections = edges_to_intersections(edges, s.intersection_x_tolerance, s.intersection_y_tolerance)
    return cells_to_tables(intersections_to_cells(intersections))  # type: ignore[no-any-return]


class _CharsPage:
    """All that pdfplumber's `Table.extract` reads of a page: its characters."""

    def __init__(self, chars: list[dict[str, Any]]):
        self.chars = chars


def pdfium_chars(textpage: Any, height: float) -> list[dict[str, Any]] | None:
    """The page's characters as pdfplumber dicts (loose boxes: advance width × font height), or None
    when some text is not upright (pdfplumber orders such characters its own way)."""
    import ctypes

    import pypdfium2.raw as c

    rect = c.FS_RECTF()
    chars: list[dict[str, Any]] = []
    count = c.FPDFText_CountChars(textpage.raw)
    for i in range(count):
        code = c.FPDFText_GetUnicode(textpage.raw, i)
        if code in (0, 0xFFFE, 0xFFFF, 10, 13):
            continue
        if c.FPDFText_IsGenerated(textpage.raw, i) == 1:
            # A word gap pdfium inferred; pdfplumber infers gaps itself (> 3 pt) and keeps digit runs and
            # CJK text together where pdfium would not, so those gaps are left to it.
            after = c.FPDFText_GetUnicode(textpage.raw, i + 1) if i + 1 < count else 0
            if code == 32 and chars and not _joined(chars[-1]["text"], chr(after)):
                last = chars[-1]
                chars.append({**last, "text": " ", "x0": last["x1"]})
            continue
        if abs(c.FPDFText_GetCharAngle(textpage.raw, i)) > 1e-3:
            return None
        if not c.FPDFText_GetLooseCharBox(textpage.raw, i, ctypes.byref(rect)):
            continue
        top, bottom = height - rect.top, height - rect.bottom
        chars.append(
            {
                "text": chr(code),
                "x0": rect.left,
                "x1": rect.right,
                "top": top,
                "bottom": bottom,
                "doctop": top,
                "upright": True,
            }
        )
    return chars


def _joined(before: str, after: str) -> bool:
    return (
        (before.isdigit() and after.isdigit())
        or ord(before) >= 0x2E80
        or (bool(after) and ord(after) >= 0x2E80)
    )


def pdfium_tables(
    groups: list[list[tuple[float, float, float, float]]], textpage: Any, height: float
) -> list[list[list[str | None]]] | None:
    """pdfplumber's `Table.extract` on the given cells with pdfium's characters; None: not possible here."""
    from pdfplumber.table import Table

    chars = pdfium_chars(textpage, height)
    if chars is None:
        return None
    page = _CharsPage(chars)
    return [_clean_table(Table(page, cells).extract(x_tolerance=3, y_tolerance=3)) for cells in groups]  # type: ignore[arg-type]


def pdfium_text_is_suspect(pdfium_visible: int, text_objects: int) -> bool:
    """The disagreement rule: a page whose text layer pdfium could not read (fewer characters than objects)."""
    return text_objects > 0 and pdfium_visible < text_objects


def _clean_table(table: list[list[Any]]) -> list[list[str | None]]:
    return [[None if cell is None else clean_text(str(cell)) for cell in row] for row in table]


class _Plumber:
    """pdfplumber, opened lazily on the first page that needs it."""

    def __init__(self, path: str):
        self.path = path
        self.pdf: Any = None

    def page(self, index: int) -> Any:
        if self.pdf is None:
            import pdfplumber

            self.pdf = pdfplumber.open(self.path)
        return self.pdf.pages[index]

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()


def extract_hybrid(
    path: str,
    limits: Limits,
    on_page: Callable[[int, int], None] | None = None,
    ocr: OcrJob | None = None,
    on_ocr: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The production engine; returns {page_count, pages, metadata, needs_ocr, engine, ocr}. With `ocr`,
    the pages without a usable text layer are then OCRed (see `ocr_pages`)."""
    try:
        doc = _pdfium_open(path)
    except ExtractError:
        raise
    except Exception as pdfium_error:
        # pdfium refuses some files pdfplumber can still read; let pdfplumber decide.
        return extract_plumber_only(path, limits, on_page, first_error=pdfium_error)
    plumber = _Plumber(path)
    try:
        page_count = len(doc)
        if page_count == 0:
            raise ExtractError("unreadable", "The PDF has no pages.")
        if page_count > limits.max_pages:
            raise ExtractError(
                "too_many_pages", f"The PDF has {page_count} pages; the limit is {limits.max_pages}."
            )
        metadata = _metadata(doc.get_metadata_dict(skip_empty=True))
        pages: list[PageOut] = []
        contents: list[PageContent] = []
        for i in range(page_count):
            page = doc[i]
            textpage = page.get_textpage()
            text = clean_text(textpage.get_text_range())
            content = page_content(page)
            contents.append(content)
            paths, text_objects = content.paths, content.texts
            out = PageOut(number=i + 1, text=text)
            wants_tables = bool(paths)
            geometry = page_edges(page) if paths else None
            if geometry is not None:
                edges, exact = geometry
                groups = table_cell_groups(edges)
                wants_tables = bool(groups)
                if groups and exact and limits.pdfium_tables and page.get_rotation() == 0:
                    # Only straight ruling lines, so these are pdfplumber's very cells: fill them with
                    # pdfium's characters instead of having pdfplumber parse the page.
                    tables = pdfium_tables(groups, textpage, page.get_height())
                    if tables is not None:
                        out.tables, out.table_engine, wants_tables = tables, "pdfium", False
            textpage.close()
            page.close()
            wants_text = pdfium_text_is_suspect(visible_chars(text), text_objects)
            if wants_tables or wants_text:
                try:
                    with page_time_limit(limits.page_timeout_s):
                        ppage = plumber.page(i)
                        if wants_text:
                            plumber_text = clean_text(ppage.extract_text() or "")
                            if visible_chars(plumber_text) > visible_chars(text):
                                out.text, out.text_engine = plumber_text, "pdfplumber"
                        if wants_tables:
                            out.tables = [_clean_table(t) for t in ppage.extract_tables()]
                        ppage.close()
                except PageTimeout:
                    out.tables_skipped = True
                except Exception as exc:
                    if _caused_by(exc, PageTimeout):
                        out.tables_skipped = True
                    elif _caused_by(exc, MemoryError):
                        raise MemoryError() from exc
                    # pdfplumber failing on one page keeps pdfium's text for it
            pages.append(out)
            if on_page:
                on_page(i + 1, page_count)
        report = ocr_pages(doc, path, pages, contents, ocr, on_ocr) if ocr else None
        return _finish(page_count, pages, metadata, ENGINE_NAME, report)
    finally:
        plumber.close()
        doc.close()


def extract_plumber_only(
    path: str,
    limits: Limits,
    on_page: Callable[[int, int], None] | None = None,
    first_error: BaseException | None = None,
    ocr: OcrJob | None = None,
    on_ocr: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """pdfplumber on every page: text and tables (the reference engine, and the fallback). No OCR: it
    renders through pdfium, which could not open such a file (a scan stays `needs_ocr`)."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(path)
    except Exception as exc:
        if _caused_by(exc, PDFPasswordIncorrect):
            raise ExtractError(
                "encrypted", "The PDF is encrypted with a password; remove the password and upload it again."
            ) from None
        raise ExtractError("unreadable", _parser_message(exc, first_error)) from None
    with pdf:
        try:
            page_count = len(pdf.pages)
        except Exception as exc:
            raise ExtractError("unreadable", _parser_message(exc, first_error)) from None
        if page_count == 0:
            # pdfplumber reports 0 pages for some broken files without raising.
            raise ExtractError(
                "unreadable", _parser_message(None, first_error) or "The PDF has no readable pages."
            )
        if page_count > limits.max_pages:
            raise ExtractError(
                "too_many_pages", f"The PDF has {page_count} pages; the limit is {limits.max_pages}."
            )
        metadata = _metadata({k: v for k, v in (pdf.metadata or {}).items() if isinstance(v, str | bytes)})
        pages: list[PageOut] = []
        for i, ppage in enumerate(pdf.pages):
            out = PageOut(number=i + 1, text="", text_engine="pdfplumber")
            try:
                with page_time_limit(limits.page_timeout_s):
                    out.text = clean_text(ppage.extract_text() or "")
                    out.tables = [_clean_table(t) for t in ppage.extract_tables()]
            except PageTimeout:
                out.tables_skipped = True
            except Exception as exc:
                if _caused_by(exc, PageTimeout):
                    out.tables_skipped = True
                elif _caused_by(exc, MemoryError):
                    raise MemoryError() from exc
                else:
                    raise ExtractError("unreadable", _parser_message(exc, first_error)) from None
            ppage.close()
            pages.append(out)
            if on_page:
                on_page(i + 1, page_count)
        return _finish(page_count, pages, metadata, "pdfplumber")


def _parser_message(exc: BaseException | None, first_error: BaseException | None) -> str:
    parts = []
    for e in (first_error, exc):
        if e is not None:
            parts.append(f"{type(e).__name__}: {str(e) or 'no detail'}")
    msg = "; ".join(parts) or "unknown parser error"
    return f"The PDF could not be parsed ({msg})."[:1900]


def _finish(
    page_count: int,
    pages: list[PageOut],
    metadata: dict[str, Any],
    engine: str,
    ocr: dict[str, Any] | None = None,
    caps: TextCaps = TextCaps(),
) -> dict[str, Any]:
    text_capped = cap_text(pages, caps)
    needs_ocr = not any(visible_chars(p.text) for p in pages)
    if needs_ocr:
        for p in pages:
            p.text = ""
    return {
        "page_count": page_count,
        "pages": [p.as_dict() for p in pages],
        "metadata": metadata,
        "needs_ocr": needs_ocr,
        "engine": engine,
        "ocr": ocr,
        "tables_skipped": [p.number for p in pages if p.tables_skipped],
        "text_capped": text_capped,
        "text_from_pdfplumber": [
            p.number for p in pages if p.text_engine == "pdfplumber" and engine != "pdfplumber"
        ],
    }


def pdf_of_image(source: str, target: str, ocr: OcrJob | None, limits: Limits) -> None:
    """An uploaded image as a PDF at `target` (see `services/extraction/ocr/images.py`)."""
    from services.extraction.ocr.images import ImageError, image_to_pdf

    options = ocr.options if ocr else OcrOptions()
    try:
        image_to_pdf(source, target, options.max_image_megapixels, limits.max_pages)
    except ImageError as exc:
        raise ExtractError(exc.reason, exc.message) from None


@dataclass(frozen=True)
class OcrJob:
    """OCR for one extraction: the options, and where to write the PDF with text layer (None: not at all)."""

    options: OcrOptions
    text_layer_path: str | None = None


_reader: PageReader | None = None  # Tesseract stays loaded in the pool child between documents
# In the pool child: asks the worker to read a page image with the vision model (vision.VisionReader).
ask_parent: Callable[[int, bytes], tuple[Any, ...]] | None = None


OCR_OFF = (
    "OCR is switched off (Documents settings, OCR mode: off), so its scanned pages were not read; an "
    "administrator can switch it on, then re-process the document."
)


class _Readers:
    """The page readers of one document: Tesseract (stays loaded in the pool child between documents), or a
    vision model (connections for this document only)."""

    def __init__(self, options: OcrOptions):
        global _reader
        self.options = options
        self.vision: Any = None
        self.tesseract: PageReader | None = None
        self._close_vision: Callable[[], None] | None = None
        if options.provider == "tesseract":
            self.tesseract = _reader = _reader or PageReader()
        else:
            from services.extraction.ocr.vision import VisionReader, ask_in_process

            ask = ask_parent
            if ask is None:
                ask, self._close_vision = ask_in_process(options)
            self.vision = VisionReader(options, ask)

    def unavailable(self) -> str:
        if self.vision is not None:
            return self.vision.unavailable()  # type: ignore[no-any-return]
        assert self.tesseract is not None
        return self.tesseract.unavailable(self.options.languages)

    def engine(self) -> str:
        if self.vision is not None:
            return self.vision.engine()  # type: ignore[no-any-return]
        assert self.tesseract is not None
        return self.tesseract.engine()

    def languages(self) -> list[str]:
        if self.tesseract is None:
            return []
        return list(self.tesseract.tessdata(self.options.languages).languages)

    def read(self, page: Any, number: int, content: PageContent) -> PageOcr:
        options = self.options
        if self.vision is not None:  # bounded by its own request timeouts (a signal would cut into its loop)
            try:
                return self.vision.read(page, number, content)  # type: ignore[no-any-return]
            except ProviderError as err:
                reason: FailureReason = "timeout" if err.timeout else "provider_error"
                raise ExtractError(
                    reason, f"Vision OCR: {err.message} The document will be tried again."
                ) from None
        assert self.tesseract is not None
        try:
            with page_time_limit(options.page_timeout_s):
                return self.tesseract.read(page, number, content, options)
        except (PageTimeout, RecognitionTimeout):
            return PageOcr(
                number=number,
                reason=f"Reading page {number} took longer than the {options.page_timeout_s:g} s limit for one page.",
            )

    def close(self) -> None:
        if self._close_vision is not None:
            self._close_vision()


def ocr_pages(
    doc: Any,
    path: str,
    pages: list[PageOut],
    contents: list[PageContent],
    job: OcrJob,
    on_ocr: Callable[[int, int], None] | None = None,
) -> dict[str, Any] | None:
    """OCR the pages that need it (every page that draws something, in mode "all"), in place: a page's
    text becomes the recognised text where that holds more than its own layer, and `page.ocr` says how
    it was read or why not (OCR switched off, no language pack, over the page limit…). Writes the text
    layer PDF for the pages without a usable text layer that Tesseract read (a vision model gives no word
    positions). `on_ocr(done, total)` after each page (first with 0). Returns the run's report, None when
    no page needed OCR."""
    options = job.options
    everything = options.mode == "all"
    scanned = {i for i, content in enumerate(contents) if needs_ocr(pages[i].text, content)}
    wanted = [i for i, content in enumerate(contents) if i in scanned or (everything and not content.empty)]
    if not wanted:
        return None
    started = time.monotonic()
    report: dict[str, Any] = {
        "engine": "",
        "languages": [],
        "pages": [],
        "skipped": [],
        "reason": "",
        "text_layer": False,
        "step_seconds": {},
    }
    if options.mode == "off":
        for i in wanted:
            pages[i].ocr = PageOcr(number=i + 1, reason=OCR_OFF).as_dict()
        report.update(skipped=[i + 1 for i in wanted], reason=OCR_OFF, seconds=0.0)
        return report
    readers = _Readers(options)
    try:
        return _read_pages(doc, path, pages, contents, job, readers, report, scanned, wanted, started, on_ocr)
    finally:
        readers.close()


def _read_pages(
    doc: Any,
    path: str,
    pages: list[PageOut],
    contents: list[PageContent],
    job: OcrJob,
    readers: _Readers,
    report: dict[str, Any],
    scanned: set[int],
    wanted: list[int],
    started: float,
    on_ocr: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    options = job.options
    everything = options.mode == "all"
    unavailable = readers.unavailable()
    todo = [] if unavailable else wanted[: options.max_pages]
    if not unavailable:
        report["engine"], report["languages"] = readers.engine(), readers.languages()
    steps: dict[str, float] = report["step_seconds"]
    layer: dict[int, list[LayerWord]] = {}
    if on_ocr and todo:
        on_ocr(0, len(todo))
    for done, i in enumerate(todo, 1):
        page = doc[i]
        try:
            read = readers.read(page, i + 1, contents[i])
        except (MemoryError, ExtractError):
            raise
        except Exception as exc:
            read = PageOcr(number=i + 1, reason=f"OCR failed on page {i + 1} ({type(exc).__name__}: {exc}).")
        finally:
            page.close()
        for step, ms in read.ms.items():
            steps[step] = steps.get(step, 0.0) + ms / 1000
        out = pages[i]
        if read.text and (everything or better_text(out.text, read.text)):
            out.text, out.text_engine = clean_text(read.text), "ocr"
        out.ocr = read.as_dict()
        report["skipped" if read.reason else "pages"].append(i + 1)
        if read.layer and i in scanned:  # a page with a text layer of its own gets no second one
            layer[i + 1] = read.layer
        if on_ocr:
            on_ocr(done, len(todo))
    for i in wanted[len(todo) :]:
        reason = unavailable or (
            f"Only the first {options.max_pages} pages that need OCR are read (the OCR page limit per "
            f"document, in the Documents settings); page {i + 1} was not."
        )
        pages[i].ocr = PageOcr(number=i + 1, reason=reason).as_dict()
        report["skipped"].append(i + 1)
    first_skipped = next((pages[n - 1].ocr for n in report["skipped"]), None)
    report["reason"] = first_skipped["reason"] if first_skipped else ""
    if job.text_layer_path and options.text_layer and layer:
        begun = time.perf_counter()
        try:
            write_text_layer(path, job.text_layer_path, layer)
            report["text_layer"] = True
        except MemoryError:
            raise
        except Exception as exc:  # the text is there; only the extra download is missing
            report["text_layer_error"] = f"{type(exc).__name__}: {exc}"
        steps["text_layer"] = time.perf_counter() - begun
    report["seconds"] = round(time.monotonic() - started, 3)
    report["step_seconds"] = {k: round(v, 3) for k, v in steps.items()}
    return report


PREVIEW_WIDTH_PX = 800


def render_previews(
    path: str,
    out_dir: str,
    pages: list[int],
    on_page: Callable[[int, int], None] | None = None,
    width_px: int = PREVIEW_WIDTH_PX,
    max_image_megapixels: float = OcrOptions.max_image_megapixels,
) -> list[int]:
    """PNG thumbnails `<out_dir>/<page>.png` of the given 1-based pages, in that order; `on_page(page, count)`
    after each file is in place. Returns the pages rendered.
    A page (or a file) pdfium cannot render just has no preview: it never fails anything else; nor has a
    page holding an image larger than OCR would ever decode (drawing it decodes all of it first)."""
    import os

    import pypdfium2 as pdfium
    from PIL import Image

    try:
        doc = pdfium.PdfDocument(path)
    except Exception:
        return []
    done: list[int] = []
    try:
        for number in pages:
            if not 1 <= number <= len(doc):
                continue
            try:
                page = doc[number - 1]
                try:
                    iw, ih = page_content(page).largest_image
                    if iw * ih > max_image_megapixels * 1e6:
                        continue
                    scale = width_px / max(page.get_width(), 1.0)
                    image = page.render(scale=scale).to_pil()
                finally:
                    page.close()
                target = os.path.join(out_dir, f"{number}.png")
                # 256 colours (fast octree) at zlib level 1: 22–29 ms a page on the corpus, the same bytes as
                # median-cut quantising at level 6 (76–165 ms) and a third of RGB's; no visible loss on a thumbnail.
                image.quantize(256, method=Image.Quantize.FASTOCTREE).save(
                    target + ".part", format="PNG", compress_level=1
                )
                os.replace(target + ".part", target)  # a half-written file is never picked up
                done.append(number)
                if on_page:
                    on_page(number, len(pages))
            except MemoryError:
                raise
            except Exception:
                continue
        return done
    finally:
        doc.close()
