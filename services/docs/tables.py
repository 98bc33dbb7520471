"""The documents service's tables (schema `docs`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, TSVECTOR, UUID

from services.kit.audit import audit_table
from services.kit.db import service_metadata
from services.kit.outbox import outbox_table
from services.kit.ratelimit import rate_limit_table

metadata = service_metadata("docs")

# Only the first part of the text is indexed: a tsvector is capped at 1 MB.
SEARCH_TEXT_CHARS = 200_000
SEARCH_CONFIG = "simple"  # language-neutral: the corpus mixes languages


def _weighted_text(body_chars: int) -> str:
    return (
        f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(title, '')), 'A') || "
        f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(sender, '')), 'B') || "
        f"setweight(to_tsvector('{SEARCH_CONFIG}', coalesce(filename, '')), 'B') || "
        f"setweight(to_tsvector('{SEARCH_CONFIG}', left(coalesce(body_text, ''), {body_chars})), 'C')"
    )


SEARCH_EXPRESSION = _weighted_text(SEARCH_TEXT_CHARS)  # what a search matches
# What relevance is judged on: the same fields, but only the start of the text (ranking reads each
# candidate's whole vector, and a long document's would cost as much as dozens of short ones).
RANK_TEXT_CHARS = 10_000
RANK_EXPRESSION = _weighted_text(RANK_TEXT_CHARS)

documents = Table(
    "documents",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("object_name", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_reason", String(32)),
    Column("failure_message", Text),
    Column("duplicate_of", UUID(as_uuid=True)),
    Column("run_id", UUID(as_uuid=True), nullable=False),
    Column("page_count", Integer),
    Column("needs_ocr", Boolean, nullable=False, server_default=text("false")),
    Column(
        "preview_pages", Integer, nullable=False, server_default=text("0")
    ),  # PNGs of pages 1..n, this run
    Column("pdf_metadata", JSONB),
    # OCR (migration 0010): the original's media type (an image is kept as uploaded), the PDF the text worker
    # made of an image, the current run's PDF with text layer, pages OCR read / why not / with what, and
    # its progress while the status is `ocr` (pages done of total).
    Column("media_type", String(32), nullable=False, server_default="application/pdf"),
    Column("pdf_object", String(200)),
    Column("text_layer_object", String(200)),
    Column("ocr_pages", Integer, nullable=False, server_default=text("0")),
    Column("ocr_reason", Text),
    Column("ocr_engine", String(200)),
    Column("ocr_done", Integer),
    Column("ocr_total", Integer),
    Column("document_type", String(32)),
    Column("title", String(300)),
    Column("document_date", Date),
    Column("sender", String(300)),
    Column("total_amount", Numeric(18, 2)),
    Column("currency", String(3)),
    Column("fields", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Lower-cased names of suggestions the user rejected on this document (never applied again).
    Column("rejected_categories", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Suggested names with no category of the user's, awaiting accept/reject (the AI may not create categories).
    Column("pending_suggestions", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("body_text", Text),  # its vectors are in `document_search`
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One index per sort key of handlers/search.py, with the id tie-breaker, so a page is an index range
    # scan (migrations 0002, 0006, 0007; measured by bench/bench_list.py).
    Index(
        "ix_documents_owner_created_filters",
        "owner_id",
        "created_at",
        "id",
        postgresql_include=["status", "document_type", "document_date", "duplicate_of"],
    ),
    Index("ix_documents_owner_title", "owner_id", text("lower(coalesce(title, filename))"), "id"),
    Index("ix_documents_owner_filename", "owner_id", text("lower(filename)"), "id"),
    Index("ix_documents_owner_size", "owner_id", "size", "id"),
    Index(
        "ix_documents_owner_docdate", "owner_id", text("COALESCE(document_date, '0001-01-01'::date)"), "id"
    ),
    Index("ix_documents_owner_status_created", "owner_id", "status", "created_at", "id"),
    Index("ix_documents_owner_sender", "owner_id", text("lower(sender) text_pattern_ops")),
    Index("ix_documents_owner_sha", "owner_id", "sha256"),
)

# A document's full-text vectors (SEARCH_EXPRESSION, RANK_EXPRESSION) and what a search filters and orders by,
# one narrow row per document (the vectors stored out of line): a search reads its candidates, count and page
# here, not from the ~1 KB documents rows. Written by triggers on `documents` in the writing transaction
# (migration 0016), read under the same row-level security as its document.
document_search = Table(
    "document_search",
    metadata,
    Column(
        "document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("document_type", String(32)),
    Column("search", TSVECTOR, nullable=False),
    Column("rank_vector", TSVECTOR, nullable=False),
    Index(
        "ix_document_search_owner_type_search", "owner_id", "document_type", "search", postgresql_using="gin"
    ),
)

# Per page, for a search's snippet: the first matching page is headlined, not the whole text.
PAGE_SEARCH_TEXT_CHARS = 100_000
PAGE_SEARCH_EXPRESSION = f"to_tsvector('{SEARCH_CONFIG}', left(text, {PAGE_SEARCH_TEXT_CHARS}))"

pages = Table(
    "pages",
    metadata,
    Column(
        "document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("number", Integer, primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),  # the document's (row-level security, 0011)
    Column("text", Text, nullable=False),
    Column("tables", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("ocr", JSONB),  # `PageOcrPublic` of a page that needed OCR (migration 0010)
    Column("search", TSVECTOR),  # generated: PAGE_SEARCH_EXPRESSION (migration 0008)
)

categories = Table(
    "categories",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("name", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_categories_owner_name", "owner_id", text("lower(name)"), unique=True),
)

document_categories = Table(
    "document_categories",
    metadata,
    Column(
        "document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "category_id", UUID(as_uuid=True), ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("source", String(8), nullable=False, server_default="user"),
    # Who filed it: the category's owner (a sharee files a shared document under a category of their own;
    # only its owner's filing shares a document through a shared category). Migration 0011.
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Index("ix_document_categories_category", "category_id", "document_id", postgresql_include=["owner_id"]),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="SET NULL")),
    Column("filename", String(255), nullable=False),
    Column("run_id", UUID(as_uuid=True), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("worker", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Integer),
    Column("error", Text),
    Column("reason", String(32)),
    Column("provider", String(40)),
    Column("model", String(200)),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    UniqueConstraint("run_id", "stage", name="uq_tasks_run_stage"),
    # The task list (migration 0012): newest first by (created_at, id), per owner, per owner and status,
    # per status and for everyone (an administrator); a filename substring by trigrams of the owner's.
    Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
    Index("ix_tasks_owner_status_created", "owner_id", "status", "created_at", "id"),
    Index("ix_tasks_status_created", "status", "created_at", "id"),
    Index("ix_tasks_created_id", "created_at", "id"),
    Index(
        "ix_tasks_owner_filename_trgm",
        "owner_id",
        "filename",
        postgresql_using="gin",
        postgresql_ops={"filename": "gin_trgm_ops"},
    ),
    Index("ix_tasks_document", "document_id"),
)

# The task statistics' rollups, kept by triggers on `tasks` (migrations 0012, 0013) and never written by the
# service: per owner and per UTC day, and the same for everyone under the owner TASKS_OF_EVERYONE.
TASKS_OF_EVERYONE = "00000000-0000-0000-0000-000000000000"

task_rollup = Table(
    "task_rollup",
    metadata,
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("provider", String(40), nullable=False),  # '' for none
    Column("model", String(200), nullable=False),  # '' for none
    Column("tasks", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),  # tasks with a duration
    Column("duration_ms", BigInteger, nullable=False),  # their sum
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    PrimaryKeyConstraint("owner_id", "day", "status", "kind", "provider", "model", name="pk_task_rollup"),
)

# How many tasks took how long: durations in buckets 10 % wide (`docs.duration_bucket`), for the p95.
task_durations = Table(
    "task_durations",
    metadata,
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("bucket", SmallInteger, nullable=False),
    Column("tasks", BigInteger, nullable=False),
    PrimaryKeyConstraint("owner_id", "day", "bucket", name="pk_task_durations"),
)

# The same per UTC month (`month` is its first day; migration 0013): a range of whole months reads these.
task_rollup_month = Table(
    "task_rollup_month",
    metadata,
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("month", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("provider", String(40), nullable=False),
    Column("model", String(200), nullable=False),
    Column("tasks", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "owner_id", "month", "status", "kind", "provider", "model", name="pk_task_rollup_month"
    ),
)

task_durations_month = Table(
    "task_durations_month",
    metadata,
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("month", Date, nullable=False),
    Column("bucket", SmallInteger, nullable=False),
    Column("tasks", BigInteger, nullable=False),
    PrimaryKeyConstraint("owner_id", "month", "bucket", name="pk_task_durations_month"),
)

# A transaction's changes to `tasks`, staged by the statement triggers (per owner, UTC day, key and duration
# bucket: NULL for no duration) and folded into the four rollups by a deferred trigger at its commit, once
# per transaction (its row in task_rollup_folds): the shared rows are locked only while committing, in one
# order (migration 0013). Empty between transactions.
task_rollup_pending = Table(
    "task_rollup_pending",
    metadata,
    Column("xid", BigInteger, nullable=False),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("provider", String(40), nullable=False),
    Column("model", String(200), nullable=False),
    Column("bucket", SmallInteger, nullable=True),
    Column("tasks", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    Index("ix_task_rollup_pending_xid", "xid"),
)

task_rollup_folds = Table(
    "task_rollup_folds",
    metadata,
    Column("xid", BigInteger, nullable=False),
    PrimaryKeyConstraint("xid", name="pk_task_rollup_folds"),
)

# A document or a category shared with a user or a group (migration 0011). A category's share covers every
# document its owner files under it (`document_categories.owner_id` = `owner_id`), now and later.
shares = Table(
    "shares",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE")),
    Column("category_id", UUID(as_uuid=True), ForeignKey("categories.id", ondelete="CASCADE")),
    Column("grantee_type", String(8), nullable=False),  # user | group
    Column("grantee_id", UUID(as_uuid=True), nullable=False),
    Column("role", String(8), nullable=False),  # viewer | editor
    Column("created_by", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("(document_id IS NULL) <> (category_id IS NULL)", name="one_target"),
    Index(
        "uq_shares_document_grantee",
        "document_id",
        "grantee_id",
        unique=True,
        postgresql_where=text("document_id IS NOT NULL"),
    ),
    Index(
        "uq_shares_category_grantee",
        "category_id",
        "grantee_id",
        unique=True,
        postgresql_where=text("category_id IS NOT NULL"),
    ),
    # What is shared with these principals, read from the index alone.
    Index(
        "ix_shares_grantee",
        "grantee_id",
        postgresql_include=["document_id", "category_id", "owner_id", "role"],
    ),
    Index("ix_shares_owner", "owner_id"),
)

# What each share reaches, materialised (migration 0014): its document, or each document its owner filed
# under its category. Kept by triggers on `shares` and `document_categories` in the writing transaction and
# never written by the service; row-level security and `access.shared_pairs` read it.
ACCESS_SORT_KEYS: dict[str, Any] = {
    "created_at": DateTime(timezone=True),
    "document_date_key": Date,  # COALESCE(document_date, '0001-01-01')
    "title_key": Text,  # lower(COALESCE(title, filename))
    "filename_key": Text,  # lower(filename)
    "size": BigInteger,
    "status": String(16),
}
document_access = Table(
    "document_access",
    metadata,
    Column("share_id", UUID(as_uuid=True), ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("grantee_id", UUID(as_uuid=True), nullable=False),
    Column("owner_id", UUID(as_uuid=True), nullable=False),  # the document's
    Column("role", String(8), nullable=False),
    # The document's values of the list's sort keys (handlers/search.py), copied by triggers as a row is written
    # and whenever the document's change (migration 0015): the shared branch of a list sorts these rows, read
    # from the grantee index alone, and probes `documents` for a page's rows only.
    *(Column(name, kind, nullable=False) for name, kind in ACCESS_SORT_KEYS.items()),
    Index("ix_document_access_document", "document_id", "grantee_id", postgresql_include=["role"]),
    Index(
        "ix_document_access_grantee",
        "grantee_id",
        postgresql_include=["document_id", "owner_id", "role", *ACCESS_SORT_KEYS],
    ),
)

# A link for people without an account: only the SHA-256 of its token is kept (migration 0011).
share_links = Table(
    "share_links",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("document_id", UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", BYTEA, nullable=False),
    Column("mode", String(8), nullable=False),  # download | preview
    Column("password_hash", Text),  # argon2id
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("created_by", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_share_links_token_hash", "token_hash", unique=True),
    Index("ix_share_links_document", "document_id"),
)

# Accounts as sharing needs them (exact email lookup, names beside shared documents), projected from the
# auth service's events (migration 0011).
directory = Table(
    "directory",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_directory_email", text("lower(email)"), unique=True),
)

# Events waiting to be published, written in the same transaction as the change they announce (the kit's
# outbox; migration 0009 brought the table to its shape). The kit's audit log shape (IP as INET, 0009).
outbox = outbox_table(metadata)
audit_log = audit_table(metadata)
# Share-link visitors and share-by-email lookups, counted across every documents process (kit/ratelimit.py).
rate_limits = rate_limit_table(metadata)
