"""rate_limits: auth's rate-limit windows, shared by all its processes (kit/ratelimit.py)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    # The shape of services.kit.ratelimit.rate_limit_table, written out so this revision never changes.
    op.create_table(
        "rate_limits",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("events", ARRAY(DOUBLE_PRECISION), nullable=False),
        sa.Column("expires_at", DOUBLE_PRECISION, nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", name="pk_rate_limits"),
        schema=S,
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"], schema=S)


def downgrade() -> None:
    op.drop_table("rate_limits", schema=S)
