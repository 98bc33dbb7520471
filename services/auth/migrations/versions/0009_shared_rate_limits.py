"""rate_limits: auth's rate-limit windows, shared by all its processes (kit/ratelimit.py)

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from services.kit.ratelimit import create_rate_limit_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    create_rate_limit_table(S)


def downgrade() -> None:
    op.drop_table("rate_limits", schema=S)
