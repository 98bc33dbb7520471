"""Documents service (`docs.*`): the Rpcs behind `/api/v1/documents`, `/categories`, `/tasks` and `/events`.

The pipeline's events (uploaded, processing, extracted, analyzed, failed, progress) are in
`contracts/documents.py`. The owner of every object is the caller's verified token, never a field.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import Field, WithJsonSchema

from .base import Contract, Empty, Rpc, Text
from .documents import DocumentFields, DocumentStatus, DocumentType, MediaType, PageOcrInfo, PdfMetadata

APP_KEY = "documents"

TaskKind = Literal["extract", "analyze", "reprocess"]
TaskStatus = Literal["queued", "running", "succeeded", "failed", "superseded"]
# `relevance` (needs q) ranks the newest 500 matches (services/docs RANK_CANDIDATES): ranking reads each one.
SortKey = Literal["uploaded_at", "document_date", "title", "filename", "size", "status", "relevance"]
FieldSource = Literal["model", "user"]
# What the caller may do with a document: its owner everything; an editor also edits fields and re-processes;
# a viewer reads, downloads, previews and searches it (contracts/sharing.py shares it).
AccessRole = Literal["owner", "editor", "viewer"]
# Whose documents a list or count covers: yours and those shared with you, yours only, or only shared ones.
Scope = Literal["all", "mine", "shared"]

# The names of `DocumentFields`, in its order, as an enum schema (`EditableField` in the OpenAPI): what a
# client may clear, the keys of a document's `fields`, the order a field editor shows them in.
if TYPE_CHECKING:

    class EditableField(StrEnum):  # members made below from DocumentFields at run time
        pass
else:
    EditableField = StrEnum("EditableField", {name: name for name in DocumentFields.model_fields})


# ---- upload ------------------------------------------------------------------------------------


class UploadPolicy(Contract):
    """What the gateway may accept from this caller right now (asked before any byte is stored)."""

    max_file_bytes: int  # settings `max_upload_mb`
    storage_left_bytes: int | None = None  # settings `quota_storage_mb_per_user` minus what is used
    documents_left: int | None = None  # settings `quota_documents_per_user` minus what is stored


class CreateDocument(Contract):
    """Sent by the gateway after it streamed the file into the Object Store under `object_name`.

    Size and SHA-256 are read back from the Object Store by the service, not taken from here.
    """

    object_name: UUID
    filename: Text = Field(max_length=1000)
    media_type: MediaType = "application/pdf"  # what the gateway found in the first bytes


# ---- documents ------------------------------------------------------------------------------------


class DocumentRef(Contract):
    id: UUID


class CategoryRefPublic(Contract):
    id: UUID
    name: str
    source: Literal["user", "ai"] = "user"  # ai: suggested by the analysis (replaced on a re-run)


class PersonPublic(Contract):
    """A user as another user sees them: no more than what sharing needs."""

    id: UUID
    email: str | None = None  # None when the documents service does not know the account (any more)
    name: str | None = None


class DocumentSummary(Contract):
    id: UUID
    filename: str
    size: int
    sha256: str
    status: DocumentStatus
    failure_reason: str | None = None
    failure_message: str | None = None
    duplicate_of: UUID | None = None
    page_count: int | None = None
    document_type: DocumentType | None = None
    title: str | None = None
    document_date: date | None = None
    sender: str | None = None
    total_amount: Decimal | None = None
    currency: str | None = None
    categories: list[CategoryRefPublic] = Field(default_factory=list)
    uploaded_at: datetime
    updated_at: datetime
    run_id: UUID
    rank: float | None = None
    snippet: str | None = None  # HTML-escaped text with <mark>…</mark> around matches
    role: AccessRole = "owner"  # the caller's
    shared_by: PersonPublic | None = None  # the owner, on a document shared with the caller


class FieldValue(Contract):
    value: Any = None
    source: FieldSource
    provider: str | None = None
    model: str | None = None
    task_id: UUID | None = None
    updated_at: datetime | None = None


class PageOcrPublic(PageOcrInfo):
    """How a page that needed OCR was read (or why not); the word boxes stay in the stored result, the reply
    says how many words there are."""

    word_count: int = 0


class PagePublic(Contract):
    number: int
    text: str
    tables: list[list[list[str | None]]] = Field(default_factory=list)
    ocr: PageOcrPublic | None = None  # on pages that needed OCR


class TaskPublic(Contract):
    id: UUID
    document_id: UUID | None
    filename: str
    run_id: UUID
    kind: TaskKind
    status: TaskStatus
    attempt: int
    worker: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None
    reason: str | None = None
    provider: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    owner_id: UUID | None = None  # shown to admins only


class StageProgress(Contract):
    """Where the current stage is, from the service's own record (a reload shows it without live events)."""

    stage: Literal["ocr"]
    done: int
    total: int
    message: str


class DocumentOcr(Contract):
    """The OCR of the current run: how many pages it read, why any were not, and whether the "PDF with text
    layer" exists (`GET /documents/{id}/text-layer`)."""

    pages: int = 0
    reason: str = ""  # pages needed OCR and were not read: why, and what to do
    engine: str = ""
    text_layer: bool = False


class DocumentDetail(DocumentSummary):
    pages: list[PagePublic] = Field(default_factory=list)
    metadata: PdfMetadata | None = None
    needs_ocr: bool = False
    fields: dict[EditableField, FieldValue] = Field(default_factory=dict)  # only the fields that have a value
    tasks: list[TaskPublic] = Field(default_factory=list)
    preview_pages: int = 0  # pages 1..n may have a PNG at /documents/{id}/pages/{n}/preview
    pending_suggestions: list[str] = Field(default_factory=list)  # suggested names awaiting accept/reject
    media_type: MediaType = "application/pdf"  # of the original (an uploaded image stays an image)
    progress: StageProgress | None = None  # while the status is `ocr`
    ocr: DocumentOcr | None = None  # once the run's extraction is recorded, when pages needed OCR


class UploadResult(Contract):
    document: DocumentSummary
    duplicate: bool = False


class DocumentFilter(Contract):
    scope: Scope = "all"
    status: list[DocumentStatus] = Field(default_factory=list)
    document_type: list[DocumentType] = Field(default_factory=list)
    category_any: list[UUID] = Field(default_factory=list, max_length=50)
    # Each is a semi-join: PostgreSQL took >10 s to plan 50 of them (the fuzz got a 504), 1 s for 10.
    category_all: list[UUID] = Field(default_factory=list, max_length=10)
    sender: Text | None = Field(default=None, max_length=300)  # starts with, ignoring case
    date_from: date | None = None
    date_to: date | None = None
    uploaded_from: datetime | None = None
    uploaded_to: datetime | None = None
    duplicate: bool | None = None
    q: Text | None = Field(default=None, max_length=500)


class ListDocuments(DocumentFilter):
    sort: SortKey = "uploaded_at"
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Text | None = Field(default=None, max_length=1000)


class DocumentPage(Contract):
    items: list[DocumentSummary]
    total: int  # exact up to `COUNT_CAP`; beyond it `total_exact` is false and total is the cap ("1,000+")
    total_exact: bool = True
    next_cursor: str | None = None


COUNT_CAP = 1_000


class DocumentFieldsUpdate(DocumentFields):
    """User edits: a field given here becomes `source=user` and survives re-processing (null = unchanged)."""


class DocumentEdit(Contract):
    """The body of `PATCH /documents/{id}`. Null means unchanged; `clear` empties fields on purpose (kept empty
    on re-runs); `title` is the same as `fields.title`.

    `reject_categories`: the caller's categories taken off this document and never suggested on it again.
    `accept_suggestions` / `reject_suggestions`: names from `pending_suggestions`; accepting creates the category
    if needed and assigns it, rejecting means it is never suggested on this document again.
    """

    title: Text | None = Field(default=None, max_length=300)
    fields: DocumentFieldsUpdate | None = None
    clear: list[EditableField] = Field(default_factory=list)
    reject_categories: list[UUID] = Field(default_factory=list, max_length=50)
    accept_suggestions: list[Text] = Field(default_factory=list, max_length=50)
    reject_suggestions: list[Text] = Field(default_factory=list, max_length=50)


class UpdateDocument(DocumentEdit):
    id: UUID


# Every status as a required key (zeros included), so a generated client knows each one is there.
StatusCounts = Annotated[
    dict[DocumentStatus, int],
    WithJsonSchema(
        {
            "type": "object",
            "properties": {status: {"type": "integer"} for status in get_args(DocumentStatus)},
            "required": list(get_args(DocumentStatus)),
            "additionalProperties": False,
        }
    ),
]


class CountDocuments(Contract):
    scope: Scope = "all"


class DocumentCounts(Contract):
    """How many documents the caller has (and can see, by `scope`), in all and per status."""

    total: int
    by_status: StatusCounts


class DownloadTicket(Contract):
    object_name: str
    filename: str
    size: int
    content_type: str = "application/pdf"


# A bound for the page numbers a client sends (the text worker refuses PDFs of more than 2000 pages).
PAGE_NUMBER_MAX = 100_000


class PreviewRef(Contract):
    document_id: UUID
    page: int = Field(ge=1, le=PAGE_NUMBER_MAX)


class PreviewTicket(Contract):
    object_name: str
    size: int
    content_type: str = "image/png"


class BulkAction(Contract):
    action: Literal["assign_category", "remove_category", "delete", "reprocess"]
    ids: list[UUID] = Field(default_factory=list, max_length=1000)
    filter: DocumentFilter | None = None
    category_id: UUID | None = None


class BulkItem(Contract):
    id: UUID
    ok: bool
    code: str | None = None
    message: str | None = None


class BulkResult(Contract):
    action: str
    results: list[BulkItem]
    succeeded: int
    failed: int


# ---- categories -------------------------------------------------------------------------------------


class CategoryCreate(Contract):
    name: Text = Field(min_length=1, max_length=80)


class CategoryUpdate(Contract):
    id: UUID
    name: Text = Field(min_length=1, max_length=80)


class CategoryPublic(Contract):
    id: UUID
    name: str
    document_count: int = 0
    created_at: datetime


class CategoryList(Contract):
    items: list[CategoryPublic]


# ---- tasks ---------------------------------------------------------------------------------------------


class TaskFilter(Contract):
    status: list[TaskStatus] = Field(default_factory=list)
    kind: list[TaskKind] = Field(default_factory=list)
    created_from: datetime | None = None
    created_to: datetime | None = None
    filename: Text | None = Field(default=None, max_length=300)
    all_users: bool = False  # admins only


class ListTasks(TaskFilter):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: Text | None = Field(default=None, max_length=500)


# The task list counts its matches up to this many: over a million rows an exact count is not worth its cost.
TASK_TOTAL_CAP = 1000


class TaskPage(Contract):
    items: list[TaskPublic]
    total: int = Field(description=f"Tasks matching, counted up to {TASK_TOTAL_CAP:,} (see total_capped)")
    total_capped: bool = Field(
        default=False, description=f'More than {TASK_TOTAL_CAP:,} tasks match: `total` is a floor ("1,000+")'
    )
    next_cursor: str | None = None


class TaskRef(Contract):
    id: UUID


class ProviderStats(Contract):
    provider: str
    model: str | None = None
    tasks: int
    tokens_in: int
    tokens_out: int
    avg_duration_ms: float | None = None


class DayStats(Contract):
    day: date
    tasks: int
    succeeded: int
    failed: int


class TaskStats(Contract):
    total: int
    by_status: dict[TaskStatus, int]
    by_kind: dict[TaskKind, int]
    avg_duration_ms: float | None = None
    p95_duration_ms: float | None = Field(
        default=None, description="Estimated from durations counted in buckets 10 % wide: within 5 %"
    )
    by_provider: list[ProviderStats]
    by_day: list[DayStats]


class TaskStatsQuery(Contract):
    created_from: datetime | None = None
    created_to: datetime | None = None
    all_users: bool = False


class EventsGrant(Contract):
    """Whose progress subjects the gateway listens on: the caller's own (`owner_id`), and those of the owners
    who share documents with the caller (`shared_owner_ids`), whose messages it forwards only after
    `docs.events.check` allowed their documents."""

    owner_id: UUID
    shared_owner_ids: list[UUID] = Field(default_factory=list)


class EventsCheck(Contract):
    document_ids: list[UUID] = Field(max_length=500)


class EventsAllowed(Contract):
    document_ids: list[UUID]  # those of the asked ones the caller may read now


class ReplayDocuments(Contract):
    """Documents whose `events.docs.uploaded` were found in the stream; each gets a new run."""

    ids: list[UUID] = Field(max_length=1000)


class ReplayResult(Contract):
    queued: int
    missing: int  # deleted since


# ---- export (data portability) ---------------------------------------------------------------------------


class ExportQuery(Contract):
    """A page of the caller's documents for their export, oldest first."""

    limit: int = Field(default=50, ge=1, le=200)
    cursor: Text | None = Field(default=None, max_length=500)


class ExportedDocument(DocumentDetail):
    """A document as its owner's export carries it: the detail without the pages' text (`DOCUMENT_PAGES`
    pages that), and where the gateway reads the original."""

    object_name: str


class ExportPage(Contract):
    items: list[ExportedDocument]
    next_cursor: str | None = None


class PagesQuery(Contract):
    document_id: UUID
    from_page: int = Field(default=1, ge=1, le=PAGE_NUMBER_MAX)


class PagesChunk(Contract):
    """Pages `from_page`… of a document, as many as fit a bounded message; more from `next_page`."""

    pages: list[PagePublic]
    next_page: int | None = None


UPLOAD_PREPARE = Rpc(
    "docs.upload.prepare",
    Empty,
    UploadPolicy,
    summary="Check access and return the caller's upload limits before streaming",
)
DOCUMENT_CREATE = Rpc(
    "docs.document.create",
    CreateDocument,
    UploadResult,
    summary="Record an uploaded file (streamed by the gateway) and queue it",
)
DOCUMENT_LIST = Rpc(
    "docs.document.list", ListDocuments, DocumentPage, summary="Filter, search and page documents"
)
DOCUMENT_COUNTS = Rpc(
    "docs.document.counts",
    CountDocuments,
    DocumentCounts,
    summary="How many documents the caller has (and can see), per status",
)
DOCUMENT_GET = Rpc("docs.document.get", DocumentRef, DocumentDetail, summary="One document with everything")
DOCUMENT_UPDATE = Rpc(
    "docs.document.update", UpdateDocument, DocumentDetail, summary="User edits of fields/title"
)
DOCUMENT_DELETE = Rpc("docs.document.delete", DocumentRef, Empty, summary="Delete a document and its blob")
DOCUMENT_DOWNLOAD = Rpc(
    "docs.document.download",
    DocumentRef,
    DownloadTicket,
    summary="Authorise and audit a download of the original",
)
DOCUMENT_TEXT_LAYER = Rpc(
    "docs.document.text_layer",
    DocumentRef,
    DownloadTicket,
    summary="Authorise and audit a download of the PDF with text layer (the OCRed copy)",
)
DOCUMENT_PREVIEW = Rpc(
    "docs.document.preview",
    PreviewRef,
    PreviewTicket,
    summary="Authorise reading one page's PNG preview of the current run",
)
DOCUMENT_REPROCESS = Rpc(
    "docs.document.reprocess", DocumentRef, DocumentSummary, summary="Run the pipeline again"
)
DOCUMENT_BULK = Rpc(
    "docs.document.bulk", BulkAction, BulkResult, summary="One action over a selection or filter"
)
CATEGORY_LIST = Rpc("docs.category.list", Empty, CategoryList, summary="The caller's categories")
CATEGORY_CREATE = Rpc("docs.category.create", CategoryCreate, CategoryPublic, summary="Create a category")
CATEGORY_UPDATE = Rpc("docs.category.update", CategoryUpdate, CategoryPublic, summary="Rename a category")
CATEGORY_DELETE = Rpc("docs.category.delete", DocumentRef, Empty, summary="Delete a category")
TASK_LIST = Rpc("docs.task.list", ListTasks, TaskPage, summary="Task history (mine; admins all)")
TASK_STATS = Rpc("docs.task.stats", TaskStatsQuery, TaskStats, summary="Task statistics")
TASK_RETRY = Rpc("docs.task.retry", TaskRef, TaskPublic, summary="Retry a failed task (a new run)")
EVENTS_GRANT = Rpc(
    "docs.events.grant",
    Empty,
    EventsGrant,
    summary="May the caller follow live progress, and as whom",
    effect="read",
)
EVENTS_CHECK = Rpc(
    "docs.events.check",
    EventsCheck,
    EventsAllowed,
    summary="Which of these documents' progress may the caller see now (shared documents)",
    effect="read",
)


class QueueDepth(Contract):
    """One durable consumer of the documents stream: its lag, what is in work, what came back."""

    consumer: str
    pending: int  # not delivered yet
    in_work: int  # delivered, not acknowledged
    redelivered: int


class SystemStatus(Contract):
    """The documents side of the admin's System page (the gateway adds which services answer)."""

    documents: dict[str, int]  # by status, every status present
    oldest_s: dict[str, float]  # seconds since the least recently changed document of each status changed
    queues: list[QueueDepth]
    storage_used_bytes: int  # the document store (originals, results, previews)
    storage_limit_bytes: int  # its share of ATRIUM_STORAGE_BUDGET


SYSTEM_STATUS = Rpc(
    "docs.system.status",
    Empty,
    SystemStatus,
    access="admin",
    summary="Documents per status, pipeline queues and storage used (the System page)",
)
DOCUMENT_REPLAY = Rpc(
    "docs.admin.replay",
    ReplayDocuments,
    ReplayResult,
    access="admin",
    summary="Re-run the pipeline for documents of any owner (atrium documents replay)",
)
DOCUMENT_EXPORT = Rpc(
    "docs.document.export",
    ExportQuery,
    ExportPage,
    summary="A page of the caller's documents with fields, categories and tasks, for their export",
)
DOCUMENT_PAGES = Rpc(
    "docs.document.pages",
    PagesQuery,
    PagesChunk,
    summary="A document's pages' text, a bounded chunk at a time (the export, long documents)",
)
