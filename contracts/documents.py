"""Documents app: the pipeline's events, progress, AI fields and settings.

The documents service (`docs.*` Rpcs, declared in `contracts/docs_api.py`) records documents and
tasks; the text worker (`extract`) and the AI worker (`ai`) consume and publish these events.
A pipeline *run* is one pass of a document through the workers; re-processing starts a new run.
JetStream de-duplicates `Nats-Msg-Id` across the whole DOCUMENTS stream, so every publisher prefixes
its ids with the kind of fact: uploads use `<document_id>:<run_id>` (dedupes a run without blocking
a re-run), the others `<kind>:<stage>:<document_id>:<run_id>` (e.g. `analyzed:…`, `failed:analyze:…`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from .base import Amount, Contract, Event, Progress, Rpc, Text, UrlText, WireSecret, health_rpc
from .streams import DOCUMENTS_STREAM

# JetStream Object Store bucket holding originals (`<document_id>`) and extraction results
# (`results/<document_id>/<run_id>.json`).
OBJECT_BUCKET = "documents"
# NATS KV bucket with runtime settings; key `documents` holds `DocumentsSettingsStored`.
SETTINGS_BUCKET = "settings"
SETTINGS_KEY = "documents"
# NATS KV bucket of runs that are no longer their document's current one (key `<run_id>`, value why:
# "superseded" by a re-run, or "deleted" with the document). The documents service writes it; the workers
# skip such a run instead of extracting it or sending it to a model.
SUPERSEDED_RUNS_BUCKET = "superseded_runs"
SUPERSEDED_RUN_TTL_S = 7 * 86400  # longer than any redelivery of a run's events

# A run's lifecycle: queued → extracting → ocr (only when pages are read by OCR) → analyzing → ready; or it ends
# in needs_ocr (scanned pages that OCR could not read: switched off, a language pack missing…) or failed.
DocumentStatus = Literal["queued", "extracting", "ocr", "analyzing", "ready", "needs_ocr", "failed"]
Stage = Literal["extract", "analyze"]
RunKind = Literal["extract", "reprocess"]  # a document's first run, or a later one
FailureReason = Literal[
    "encrypted",
    "unreadable",
    "timeout",
    "too_large",
    "too_many_pages",
    "memory",
    "provider_error",
    "invalid_output",
    "internal",
]
DocumentType = Literal[
    "invoice",
    "receipt",
    "contract",
    "letter",
    "bank_statement",
    "payslip",
    "tax_document",
    "other",
]
ProviderName = Literal["builtin", "anthropic", "ollama", "openai_compatible"]
# What reads scanned pages: Tesseract in the text worker, or a vision model (page images, no word boxes).
OcrProvider = Literal["tesseract", "anthropic", "ollama", "openai_compatible"]
OcrMode = Literal["off", "scanned", "all"]  # scanned: pages without a usable text layer; all: every page
# Tesseract language codes (eng, deu, chi_sim, deu_latf…).
OcrLanguage = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}(_[a-z]{3,4})?$")]
OCR_MAX_PAGES_LIMIT = 2000  # the text worker refuses PDFs of more pages anyway
# A page image sent to a vision model: its long side at most this many pixels (what Anthropic reads without
# scaling it down itself), JPEG.
VISION_MAX_PX = 1568
# What can be uploaded: content is sniffed (magic bytes), never taken from the name. Images become a PDF
# (one page each; a TIFF one page per frame) in the text worker; the original image is kept as uploaded.
MediaType = Literal["application/pdf", "image/jpeg", "image/png", "image/tiff"]


def result_object_name(document_id: UUID, run_id: UUID) -> str:
    return f"results/{document_id}/{run_id}.json"


def text_layer_object_name(document_id: UUID, run_id: UUID) -> str:
    """The "PDF with text layer" of a run that OCRed pages: the original's pages with the recognised words
    as invisible text (the original itself is never modified)."""
    return f"text-layer/{document_id}/{run_id}.pdf"


def image_pdf_object_name(document_id: UUID, run_id: UUID) -> str:
    """An uploaded image as a PDF (one page per image frame), made by the text worker: what the run's pages,
    previews and text layer come from. The uploaded image itself stays the document's original."""
    return f"image-pdf/{document_id}/{run_id}.pdf"


PREVIEW_MAX_PAGES = 50  # pages 1..50 of a document can be previewed
PREVIEW_BATCH_PAGES = 8  # a missing preview is rendered with its neighbours: readers scroll on


def preview_object_name(document_id: UUID, run_id: UUID, page: int) -> str:
    """A page's PNG thumbnail, rendered by the text worker the first time someone asks for it."""
    return f"previews/{document_id}/{run_id}/{page}.png"


def preview_batch(page: int, page_count: int) -> range:
    """The pages rendered together with `page`: its block of `PREVIEW_BATCH_PAGES`, within the previewable pages."""
    first = (page - 1) // PREVIEW_BATCH_PAGES * PREVIEW_BATCH_PAGES + 1
    return range(first, min(first + PREVIEW_BATCH_PAGES - 1, page_count, PREVIEW_MAX_PAGES) + 1)


class DocumentUploaded(Contract):
    document_id: UUID
    owner_id: UUID
    run_id: UUID
    filename: str
    size: int
    sha256: str
    object_name: str
    uploaded_at: datetime
    reprocess: bool = False
    kind: RunKind = "extract"


class DocumentProcessing(Contract):
    """A worker took a run's stage: the documents service marks the status and the task running."""

    document_id: UUID
    owner_id: UUID
    run_id: UUID
    stage: Stage
    attempt: int
    worker: str
    started_at: datetime


class PdfMetadata(Contract):
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    producer: str | None = None
    creator: str | None = None
    creation_date: datetime | None = None


class OcrWord(Contract):
    text: str
    # x0, y0, x1, y1 in points on the page as displayed (after /Rotate), origin top left; the page's
    # size is `PageOcr.width` × `PageOcr.height`.
    box: tuple[float, float, float, float]
    conf: float  # Tesseract's word confidence, 0-100


class PageOcrInfo(Contract):
    """How a page that needed OCR was read, or why it was not (`reason`), without the words."""

    confidence: float | None = None  # mean word confidence (None: no words, or a vision model)
    rotation: int = 0  # the scan was turned clockwise by this much; it was turned back to be read
    skew: float = 0.0  # degrees it was straightened by
    dpi: int = 0
    width: float = 0.0
    height: float = 0.0
    languages: str = ""  # e.g. "eng+deu"
    reason: str = (
        ""  # not read: why, and what to do (image too large, over the page limit, no language pack…)
    )
    engine: str = ""  # what read it: "tesseract 5.5.0", or the vision model ("anthropic claude-haiku-4-5")
    # Whether the page's words come with their boxes: Tesseract's do; a vision model gives page text only.
    word_boxes: bool = False


class PageOcr(PageOcrInfo):
    words: list[OcrWord] = Field(default_factory=list)


class PageText(Contract):
    number: int  # 1-based
    text: str
    tables: list[list[list[str | None]]] = Field(default_factory=list)
    ocr: PageOcr | None = None  # set on pages that needed OCR; `text` is then the recognised text


class OcrReport(Contract):
    """The OCR part of an extraction run."""

    engine: str  # e.g. "tesseract 5.5.4"
    languages: list[str]
    pages: list[int]  # pages that were read (a blank or textless image reads as no text)
    skipped: list[int] = Field(default_factory=list)  # pages that needed OCR and were not read
    reason: str = ""  # why (the first skipped page's reason), for the `needs_ocr` message
    text_layer_object: str | None = None  # `text_layer_object_name(...)`, when one was written
    seconds: float = 0.0
    step_seconds: dict[str, float] = Field(default_factory=dict)  # render, prepare, recognize, text_layer


class ExtractionResult(Contract):
    """Stored in the Object Store at `result_object_name(...)`, never sent in a message."""

    document_id: UUID
    run_id: UUID
    page_count: int
    pages: list[PageText]
    metadata: PdfMetadata
    needs_ocr: bool = False
    engine: str = ""
    ocr: OcrReport | None = None


class DocumentExtracted(Contract):
    document_id: UUID
    owner_id: UUID
    run_id: UUID
    page_count: int
    needs_ocr: bool
    chars: int
    table_count: int
    metadata: PdfMetadata
    result_object: str
    engine: str
    worker: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    kind: RunKind = "extract"
    # Pages 1..preview_pages can be previewed (rendered on first request to `preview_object_name`).
    preview_pages: int = 0
    ocr_pages: int = 0  # pages OCR read (see `OcrReport.pages`)
    ocr_reason: str = ""  # pages needed OCR and were not read: why (see `ExtractionResult.ocr`)
    text_layer_object: str | None = None  # the "PDF with text layer" in OBJECT_BUCKET, when OCR wrote one
    # An uploaded image made into a PDF (`image_pdf_object_name`): pages and previews come from it.
    pdf_object: str | None = None
    ocr_engine: str = ""  # what read the OCRed pages (`OcrReport.engine`)


class DocumentFields(Contract):
    """A document's fields: what the AI worker fills in and a user may edit. Declared here once; the analysis'
    answer (`ExtractedFields`), a user's edit (`docs_api.DocumentFieldsUpdate`), the names a client may clear
    (`docs_api.EditableField`, in this order) and the documents service's field columns derive from it."""

    document_type: DocumentType | None = None
    title: Text | None = Field(default=None, max_length=300)
    document_date: date | None = None
    sender: Text | None = Field(default=None, max_length=300)
    recipient: Text | None = Field(default=None, max_length=300)
    invoice_number: Text | None = Field(default=None, max_length=100)
    customer_number: Text | None = Field(default=None, max_length=100)
    total_amount: Amount | None = None
    net_amount: Amount | None = None
    tax_amount: Amount | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    due_date: date | None = None
    iban: Text | None = Field(default=None, max_length=34)
    language: Text | None = Field(default=None, max_length=8)
    summary: Text | None = Field(default=None, max_length=2000)


class ExtractedFields(DocumentFields):
    """What the AI worker fills in. Every field is optional: a model says nothing rather than guess."""

    suggested_categories: list[str] = Field(default_factory=list, max_length=10)


class DocumentAnalyzed(Contract):
    document_id: UUID
    owner_id: UUID
    run_id: UUID
    fields: ExtractedFields
    provider: ProviderName
    model: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    worker: str
    attempt: int
    started_at: datetime
    finished_at: datetime


class DocumentFailed(Contract):
    document_id: UUID
    owner_id: UUID
    run_id: UUID
    stage: Stage
    reason: FailureReason
    message: str = Field(max_length=2000)
    attempt: int
    final: bool  # True: no more attempts; the document is `failed`
    worker: str = ""
    started_at: datetime | None = None
    finished_at: datetime


class DocumentProgress(Contract):
    document_id: UUID
    run_id: UUID
    stage: Stage
    status: DocumentStatus
    page: int | None = None
    pages: int | None = None
    message: str = ""


class DocumentOcrProgress(Contract):
    """The text worker is reading a run's scanned pages: `done` of `total` (0 when it starts). The documents
    service records it (status `ocr`, the page counts), so a reloaded page shows where OCR is."""

    document_id: UUID
    owner_id: UUID
    run_id: UUID
    done: int = Field(ge=0)
    total: int = Field(ge=0)
    engine: str = ""
    attempt: int
    worker: str
    at: datetime


class OcrEngineInfo(Contract):
    """What a text worker can read with, announced in the KV bucket `OCR_ENGINES_BUCKET` (one key per worker):
    the settings list and validate OCR languages against it."""

    worker: str
    engine: str  # e.g. "tesseract 5.5.0" ("" when tesserocr is not installed)
    languages: list[str]  # installed Tesseract languages (`osd` left out)
    at: datetime


OCR_ENGINES_BUCKET = "ocr_engines"
# A worker renews its entry every OCR_ENGINES_RENEW_S; one that stopped drops out after the bucket's TTL.
OCR_ENGINES_TTL_S = 2 * 3600
OCR_ENGINES_RENEW_S = 1800


class DocumentsSettingsBase(Contract):
    provider: ProviderName = "builtin"
    model: str = Field(default="", max_length=200)
    base_url: str = Field(default="", max_length=500)
    prompt_instructions: str = Field(default="", max_length=4000)
    request_timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_upload_mb: int = Field(default=50, ge=1, le=2048)
    duplicate_policy: Literal["reject", "mark"] = "mark"
    ai_may_create_categories: bool = False
    quota_documents_per_user: int | None = Field(default=None, ge=1)
    quota_storage_mb_per_user: int | None = Field(default=None, ge=1)
    task_retention_days: int = Field(default=90, ge=1, le=3650)
    # OCR of scanned pages (the text worker reads these per document, so a change applies to the next one).
    ocr_mode: OcrMode = "scanned"
    ocr_languages: list[OcrLanguage] = Field(default_factory=lambda: ["eng"], min_length=1, max_length=10)
    ocr_provider: OcrProvider = "tesseract"
    ocr_model: str = Field(default="", max_length=200)  # a vision model; "" = the provider's default
    ocr_base_url: str = Field(default="", max_length=500)
    ocr_max_pages: int = Field(default=500, ge=1, le=OCR_MAX_PAGES_LIMIT)


class DocumentsSettingsStored(DocumentsSettingsBase):
    """What the KV bucket holds: API keys only as ciphertext (platform secret), plus their last four."""

    api_key_ciphertext: str = ""
    api_key_last4: str = ""
    # The vision OCR provider's key; none: the AI provider's key when both are the same provider.
    ocr_api_key_ciphertext: str = ""
    ocr_api_key_last4: str = ""
    revision: int = 0


class DocumentsSettingsPublic(DocumentsSettingsBase):
    api_key_set: bool = False
    api_key_last4: str = ""
    ocr_api_key_set: bool = False
    ocr_api_key_last4: str = ""
    # Tesseract languages the text workers have (what `ocr_languages` may name), and their engine.
    ocr_languages_installed: list[str] = Field(default_factory=list)
    ocr_engine: str = ""


QUOTA_MAX = 1_000_000_000  # documents, or MB (a petabyte): more is no limit at all; send null for none


class DocumentsSettingsUpdate(Contract):
    """PATCH semantics: only the fields sent change. `api_key: ""` clears the key; a quota sent as null is
    removed (no limit); null for any other field leaves it as it is."""

    provider: ProviderName | None = None
    model: Text | None = Field(default=None, max_length=200)
    base_url: UrlText | None = Field(default=None, max_length=500)
    api_key: WireSecret | None = None
    prompt_instructions: Text | None = Field(default=None, max_length=4000)
    request_timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_upload_mb: int | None = Field(default=None, ge=1, le=2048)
    duplicate_policy: Literal["reject", "mark"] | None = None
    ai_may_create_categories: bool | None = None
    quota_documents_per_user: int | None = Field(default=None, ge=1, le=QUOTA_MAX)
    quota_storage_mb_per_user: int | None = Field(default=None, ge=1, le=QUOTA_MAX)
    task_retention_days: int | None = Field(default=None, ge=1, le=3650)
    ocr_mode: OcrMode | None = None
    # Each must be installed on the text workers (`DocumentsSettingsPublic.ocr_languages_installed`).
    ocr_languages: list[OcrLanguage] | None = Field(default=None, min_length=1, max_length=10)
    ocr_provider: OcrProvider | None = None
    ocr_model: Text | None = Field(default=None, max_length=200)
    ocr_base_url: UrlText | None = Field(default=None, max_length=500)
    ocr_api_key: WireSecret | None = None  # "" clears it
    ocr_max_pages: int | None = Field(default=None, ge=1, le=OCR_MAX_PAGES_LIMIT)


class SettingsChanged(Contract):
    """An administrator changed the Documents settings: which fields (never the key itself), by whom."""

    actor_id: UUID
    changed: list[str]
    provider: ProviderName
    model: str = ""
    base_url: str = ""
    revision: int
    changed_at: datetime
    client_ip: str | None = None


DOCUMENT_UPLOADED = Event(
    "events.docs.uploaded",
    DocumentUploaded,
    stream=DOCUMENTS_STREAM.name,
    summary="A document (or a re-run of one) waits for text extraction",
)
DOCUMENT_PROCESSING = Event(
    "events.docs.processing",
    DocumentProcessing,
    stream=DOCUMENTS_STREAM.name,
    summary="A worker started a stage of a run",
)
DOCUMENT_EXTRACTED = Event(
    "events.docs.extracted",
    DocumentExtracted,
    stream=DOCUMENTS_STREAM.name,
    summary="Text, tables and metadata are in the Object Store",
)
DOCUMENT_OCR_PROGRESS = Event(
    "events.docs.ocr",
    DocumentOcrProgress,
    stream=DOCUMENTS_STREAM.name,
    summary="The text worker is reading a run's scanned pages (n of N done)",
)
DOCUMENT_ANALYZED = Event(
    "events.docs.analyzed",
    DocumentAnalyzed,
    stream=DOCUMENTS_STREAM.name,
    summary="The AI worker filled in the fields",
)
DOCUMENT_FAILED = Event(
    "events.docs.failed",
    DocumentFailed,
    stream=DOCUMENTS_STREAM.name,
    summary="A stage failed (final=true: the document is failed)",
)
DOCUMENT_PROGRESS = Progress(
    "progress.docs",
    DocumentProgress,
    tokens=("owner_id", "document_id"),
    summary="Fire-and-forget progress of a document, per page",
)


class RenderPreviews(Contract):
    """The documents service, having checked that the reader may see the document (its owner, or someone it
    is shared with), asks for a missing preview with the reader's token; for a share link's visitor, who has
    none, with a grant it signed (`services.kit.grants`, purpose `PREVIEW_GRANT`)."""

    document_id: UUID
    owner_id: UUID
    reader_id: UUID | None = None  # whose token comes with the request; None: the owner's, or a grant
    grant: UrlText | None = Field(default=None, max_length=500)
    run_id: UUID
    object_name: Text = Field(min_length=1, max_length=200)  # the original in OBJECT_BUCKET
    page_count: int = Field(ge=1, le=100_000)
    page: int = Field(ge=1, le=PREVIEW_MAX_PAGES)


class PreviewsRendered(Contract):
    pages: list[int]  # the pages of the batch whose PNG is now stored (a page pdfium cannot render is absent)


PREVIEW_GRANT = "preview-render"  # what a grant for a share link's preview is signed for

PREVIEW_RENDER = Rpc(
    "extract.preview.render",
    RenderPreviews,
    PreviewsRendered,
    access="public",  # a reader's token, checked by the worker, or the documents service's signed grant
    summary="Render a page's preview and its batch into the Object Store (for the documents service only)",
    effect="read",  # a preview a reader reads (rendered on demand)
)

SETTINGS_CHANGED = Event(
    "events.docs.settings_changed",
    SettingsChanged,
    stream=DOCUMENTS_STREAM.name,
    summary="The Documents settings changed (published by the ai service, recorded in the documents audit log)",
)

DOCS_HEALTH = health_rpc("docs")
EXTRACT_HEALTH = health_rpc("extract")
AI_HEALTH = health_rpc("ai")
