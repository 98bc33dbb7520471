"""optional usernames (unique regardless of case) and the devices each account has signed in from

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    op.add_column("users", sa.Column("username", sa.String(50)), schema=S)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True, schema=S)
    op.create_table(
        "known_devices",
        sa.Column(
            "user_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(120)),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("known_devices", schema=S)
    op.drop_index("uq_users_username_lower", "users", schema=S)
    op.drop_column("users", "username", schema=S)
