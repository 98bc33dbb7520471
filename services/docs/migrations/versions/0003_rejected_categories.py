"""categories a user rejected as suggestions for a document: never suggested there again

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    # Lower-cased names: the model suggests names, and a rejected one must stay rejected on every re-run.
    op.add_column(
        "documents",
        sa.Column("rejected_categories", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("documents", "rejected_categories", schema=S)
