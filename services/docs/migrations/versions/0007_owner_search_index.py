"""full-text index led by owner and type, so a search reads only the caller's matches (bench/bench_list.py)

Revision ID: 0007
Revises: 0006
"""

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    # btree_gin (plain values in a GIN index) is created by provisioning, as the database superuser.
    if op.get_bind().execute(text("select 1 from pg_extension where extname = 'btree_gin'")).first() is None:
        raise RuntimeError(
            "The PostgreSQL extension btree_gin is missing: run the provisioning "
            "(infra/embedded.py provision, as the database superuser) before migrating."
        )
    # One GIN scan finds this owner's matches (of one type, when filtered): the text-only index gave every
    # owner's matches, tested row by row, or the planner ANDed in a bitmap of all the owner's documents.
    op.create_index(
        "ix_documents_owner_type_search",
        "documents",
        ["owner_id", "document_type", "search"],
        postgresql_using="gin",
        schema=S,
    )
    op.drop_index("ix_documents_search", "documents", schema=S)
    op.drop_index("ix_documents_owner_type", "documents", schema=S)  # (0006) now inside the GIN index


def downgrade() -> None:
    op.create_index("ix_documents_owner_type", "documents", ["owner_id", "document_type"], schema=S)
    op.create_index("ix_documents_search", "documents", ["search"], postgresql_using="gin", schema=S)
    op.drop_index("ix_documents_owner_type_search", "documents", schema=S)
