"""the external auth server's tokens of each session that signed in through it (encrypted)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    op.create_table(
        "external_tokens",
        sa.Column(
            "session_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("access_enc", sa.Text, nullable=False),
        sa.Column("refresh_enc", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True)),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(300)),
        schema=S,
    )
    op.create_index("ix_external_tokens_expires_at", "external_tokens", ["expires_at"], schema=S)


def downgrade() -> None:
    op.drop_table("external_tokens", schema=S)
