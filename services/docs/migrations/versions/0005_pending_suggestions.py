"""AI-suggested category names with no matching category, kept for the user to accept or reject

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    # Set when the AI may not create categories itself; each analysis replaces the list.
    op.add_column(
        "documents",
        sa.Column("pending_suggestions", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("documents", "pending_suggestions", schema=S)
