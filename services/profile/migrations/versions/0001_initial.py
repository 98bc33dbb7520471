"""profiles

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "profile"


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("display_name", sa.String(80)),
        sa.Column("full_name", sa.String(200)),
        sa.Column("phone", sa.String(40)),
        sa.Column("job_title", sa.String(120)),
        sa.Column("locale", sa.String(8), nullable=False, server_default="en"),
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("theme", sa.String(8), nullable=False, server_default="system"),
        sa.Column("avatar_object", sa.String(80)),
        sa.Column("avatar_content_type", sa.String(32)),
        sa.Column("avatar_updated_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("profiles", schema=S)
