"""The rows of the documents tables as the handlers read them: SQLAlchemy rows, typed by attribute."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Row

from contracts.docs_api import AccessRole, TaskKind, TaskStatus
from contracts.documents import DocumentStatus, DocumentType, MediaType, Stage

AnyRow = Row[*tuple[Any, ...]]  # a row of any statement (read by column name)


class SummaryRow(Protocol):
    """What a list row shows: no text, vector or JSON. Its names are the columns a page reads
    (`SUMMARY_COLUMNS` in handlers/search.py)."""

    id: UUID
    owner_id: UUID
    filename: str
    size: int
    sha256: str
    status: DocumentStatus
    failure_reason: str | None
    failure_message: str | None
    duplicate_of: UUID | None
    page_count: int | None
    document_type: DocumentType | None
    title: str | None
    document_date: date | None
    sender: str | None
    total_amount: Decimal | None
    currency: str | None
    created_at: datetime
    updated_at: datetime
    run_id: UUID


class EventDocumentRow(Protocol):
    """What the pipeline's events read of a document (handlers/pipeline.py `EVENT_COLUMNS`): not its text,
    vectors or metadata, which each event would otherwise fetch again."""

    id: UUID
    owner_id: UUID
    filename: str
    run_id: UUID
    status: DocumentStatus
    fields: dict[str, dict[str, Any]]  # field name -> stored FieldValue
    rejected_categories: list[str]


class DocumentRow(SummaryRow, Protocol):
    """A whole `documents` row (without the text and vectors, which no handler reads back)."""

    object_name: str
    needs_ocr: bool
    preview_pages: int
    media_type: MediaType
    pdf_object: str | None
    text_layer_object: str | None
    ocr_pages: int
    ocr_reason: str | None
    ocr_engine: str | None
    ocr_done: int | None
    ocr_total: int | None
    pdf_metadata: dict[str, Any] | None
    fields: dict[str, dict[str, Any]]  # field name -> stored FieldValue
    rejected_categories: list[str]
    pending_suggestions: list[str]


class AccessibleRow(DocumentRow, Protocol):
    """A document's row with the caller's role (services/docs/access.py `read_document_row`)."""

    access_role: AccessRole


class TaskRow(Protocol):
    id: UUID
    owner_id: UUID
    document_id: UUID | None
    filename: str
    run_id: UUID
    stage: Stage
    kind: TaskKind
    status: TaskStatus
    attempt: int
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: str | None
    reason: str | None
    provider: str | None
    model: str | None
    tokens_in: int | None
    tokens_out: int | None


class CategoryRow(Protocol):
    id: UUID
    owner_id: UUID
    name: str
    created_at: datetime


class OutboxRow(Protocol):
    id: int
    subject: str
    msg_id: str
    payload: dict[str, Any]
