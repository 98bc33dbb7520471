"""indexes for every sort key and the sender filter (measured by bench/bench_list.py)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.sql.elements import TextClause

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "docs"
# Each matches a sort expression of services/docs/handlers/search.py `_sort_expression`, with the id
# tie-breaker, so a page is an index range scan instead of a sort of all the owner's documents.
INDEXES: dict[str, list[str | TextClause]] = {
    "ix_documents_owner_title": ["owner_id", sa.text("lower(coalesce(title, filename))"), "id"],
    "ix_documents_owner_filename": ["owner_id", sa.text("lower(filename)"), "id"],
    "ix_documents_owner_size": ["owner_id", "size", "id"],
    "ix_documents_owner_docdate": ["owner_id", sa.text("coalesce(document_date, DATE '0001-01-01')"), "id"],
    "ix_documents_owner_status_created": ["owner_id", "status", "created_at", "id"],
    "ix_documents_owner_sender": ["owner_id", sa.text("lower(sender) text_pattern_ops")],
}


def upgrade() -> None:
    op.drop_index("ix_documents_owner_date", "documents", schema=S)
    op.drop_index("ix_documents_owner_status", "documents", schema=S)
    for name, cols in INDEXES.items():
        op.create_index(name, "documents", cols, schema=S)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "documents", schema=S)
    op.create_index("ix_documents_owner_date", "documents", ["owner_id", "document_date", "id"], schema=S)
    op.create_index("ix_documents_owner_status", "documents", ["owner_id", "status"], schema=S)
