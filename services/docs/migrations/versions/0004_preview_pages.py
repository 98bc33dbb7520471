"""how many page previews the current run rendered (pages 1..n; the text worker stores the PNGs)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column("preview_pages", sa.Integer, nullable=False, server_default=sa.text("0")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("documents", "preview_pages", schema=S)
