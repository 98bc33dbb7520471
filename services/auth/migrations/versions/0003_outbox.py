"""the kit's outbox: user events leave in the transaction of the change they announce

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from services.kit.outbox import create_outbox_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    create_outbox_table(S)


def downgrade() -> None:
    op.drop_table("outbox", schema=S)
