"""a search vector per page (snippets from the first matching page), a bounded vector to rank by

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "docs"
# Kept in step with services/docs/tables.py PAGE_SEARCH_EXPRESSION and RANK_EXPRESSION (a migration must not
# import app code).
PAGE_SEARCH = "to_tsvector('simple', left(text, 100000))"
RANK = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(sender, '')), 'B') || "
    "setweight(to_tsvector('simple', coalesce(filename, '')), 'B') || "
    "setweight(to_tsvector('simple', left(coalesce(body_text, ''), 10000)), 'C')"
)


def upgrade() -> None:
    # Headlining a document's whole text cost about 17 ms per 100,000 characters, for each listed row;
    # one page (a few thousand characters) costs about 1 ms.
    op.add_column("pages", sa.Column("search", TSVECTOR, sa.Computed(PAGE_SEARCH, persisted=True)), schema=S)
    # Ranking reads each candidate's whole vector: a long document's (up to 200,000 characters of text) cost
    # as much as dozens of short ones. Relevance is judged on the title, sender, filename and the first
    # 10,000 characters; matching still uses the full `search` vector.
    op.add_column(
        "documents", sa.Column("rank_vector", TSVECTOR, sa.Computed(RANK, persisted=True)), schema=S
    )
    op.execute(f"ALTER TABLE {S}.documents ALTER COLUMN rank_vector SET STORAGE MAIN")
    # No index: a listed row's pages are read by the primary key, in order, until one matches; each test
    # reads the page's vector, kept in the row (MAIN) rather than in TOAST: 50 long documents' snippets
    # 39 → 27 ms (a GIN on (document_id, search) made it slower). Rows written before this keep their layout.
    op.execute(f"ALTER TABLE {S}.pages ALTER COLUMN search SET STORAGE MAIN")


def downgrade() -> None:
    op.drop_column("documents", "rank_vector", schema=S)
    op.drop_column("pages", "search", schema=S)
