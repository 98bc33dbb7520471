"""documents, pages, categories, tasks, outbox, audit log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "docs"
# Kept in step with services/docs/tables.py SEARCH_EXPRESSION (a migration must not import app code).
SEARCH = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(sender, '')), 'B') || "
    "setweight(to_tsvector('simple', coalesce(filename, '')), 'B') || "
    "setweight(to_tsvector('simple', left(coalesce(body_text, ''), 200000)), 'C')"
)


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "documents",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("object_name", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.String(32)),
        sa.Column("failure_message", sa.Text),
        sa.Column("duplicate_of", UUID(as_uuid=True)),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("page_count", sa.Integer),
        sa.Column("needs_ocr", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("pdf_metadata", JSONB),
        sa.Column("document_type", sa.String(32)),
        sa.Column("title", sa.String(300)),
        sa.Column("document_date", sa.Date),
        sa.Column("sender", sa.String(300)),
        sa.Column("total_amount", sa.Numeric(18, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("fields", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("body_text", sa.Text),
        sa.Column("search", TSVECTOR, sa.Computed(SEARCH, persisted=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=S,
    )
    op.create_index("ix_documents_search", "documents", ["search"], postgresql_using="gin", schema=S)
    op.create_index("ix_documents_owner_created", "documents", ["owner_id", "created_at", "id"], schema=S)
    op.create_index("ix_documents_owner_date", "documents", ["owner_id", "document_date", "id"], schema=S)
    op.create_index("ix_documents_owner_status", "documents", ["owner_id", "status"], schema=S)
    op.create_index("ix_documents_owner_sha", "documents", ["owner_id", "sha256"], schema=S)
    op.create_table(
        "pages",
        sa.Column(
            "document_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tables", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=S,
    )
    op.create_table(
        "categories",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=S,
    )
    op.create_index(
        "uq_categories_owner_name", "categories", ["owner_id", sa.text("lower(name)")], unique=True, schema=S
    )
    op.create_table(
        "document_categories",
        sa.Column(
            "document_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "category_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.categories.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source", sa.String(8), nullable=False, server_default="user"),
        schema=S,
    )
    op.create_index(
        "ix_document_categories_category", "document_categories", ["category_id", "document_id"], schema=S
    )
    op.create_table(
        "tasks",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("document_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.documents.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("reason", sa.String(32)),
        sa.Column("provider", sa.String(40)),
        sa.Column("model", sa.String(200)),
        sa.Column("tokens_in", sa.Integer),
        sa.Column("tokens_out", sa.Integer),
        sa.UniqueConstraint("run_id", "stage", name="uq_tasks_run_stage"),
        schema=S,
    )
    op.create_index("ix_tasks_owner_created", "tasks", ["owner_id", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_document", "tasks", ["document_id"], schema=S)
    op.create_index("ix_tasks_created", "tasks", ["created_at"], schema=S)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("msg_id", sa.String(200), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"), schema=S
    )
    op.create_table(
        "audit_log",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_id", UUID(as_uuid=True)),
        sa.Column("target_id", UUID(as_uuid=True)),
        sa.Column("ip", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=S,
    )
    op.create_index("ix_audit_log_target", "audit_log", ["target_id"], schema=S)


def downgrade() -> None:
    for t in ("audit_log", "outbox", "tasks", "document_categories", "categories", "pages", "documents"):
        op.drop_table(t, schema=S)
