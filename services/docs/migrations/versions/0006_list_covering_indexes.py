"""list: covering indexes for filters and the capped count, the search vector kept in the row (bench/bench_list.py)

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
    op.create_index(
        "ix_documents_owner_created_filters",
        "documents",
        ["owner_id", "created_at", "id"],
        postgresql_include=["status", "document_type", "document_date", "duplicate_of"],
        schema=S,
    )
    op.drop_index("ix_documents_owner_created", "documents", schema=S)
    # A type filter narrows a full-text match before any row is read (bitmap AND with the text index).
    op.create_index("ix_documents_owner_type", "documents", ["owner_id", "document_type"], schema=S)
    # A search tests (and ranks by) each candidate's vector: kept in the row (MAIN: compressed, moved out only
    # when nothing else fits), a test is a read of the row instead of a TOAST lookup of the vector; the body text,
    # read only for snippets, goes out of line first. Rows written before this keep their layout until updated.
    op.execute(f"ALTER TABLE {S}.documents ALTER COLUMN search SET STORAGE MAIN")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {S}.documents ALTER COLUMN search SET STORAGE EXTENDED")
    op.drop_index("ix_documents_owner_type", "documents", schema=S)
    op.create_index("ix_documents_owner_created", "documents", ["owner_id", "created_at", "id"], schema=S)
    op.drop_index("ix_documents_owner_created_filters", "documents", schema=S)
