"""rate_limits: the documents service's rate-limit windows, shared by all its processes (kit/ratelimit.py)

Revision ID: 0017_shared_rate_limits
Revises: 0016_document_search
"""

from alembic import op

from services.kit.ratelimit import create_rate_limit_table

revision = "0017_shared_rate_limits"
down_revision = "0016_document_search"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    create_rate_limit_table(S)


def downgrade() -> None:
    op.drop_table("rate_limits", schema=S)
