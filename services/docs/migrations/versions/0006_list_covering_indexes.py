"""indexes that let the list's filters and capped count skip the wide document rows (bench/bench_list.py)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    # The newest-first index, now also carrying the columns the usual filters test: the count and the
    # walk for a page check them in the index instead of fetching each ~2 KB row (with its text) first.
    op.create_index("ix_documents_owner_created_filters", "documents", ["owner_id", "created_at", "id"],
                    postgresql_include=["status", "document_type", "document_date", "duplicate_of"], schema=S)
    op.drop_index("ix_documents_owner_created", "documents", schema=S)
    # A type filter narrows a full-text match before any row is read (bitmap AND with the text index).
    op.create_index("ix_documents_owner_type", "documents", ["owner_id", "document_type"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_documents_owner_type", "documents", schema=S)
    op.create_index("ix_documents_owner_created", "documents", ["owner_id", "created_at", "id"], schema=S)
    op.drop_index("ix_documents_owner_created_filters", "documents", schema=S)
