"""refresh rotation history, successor for racing refreshes, single-use action tokens, audit indexes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    # The successor of the last rotation, encrypted with a key derived from the previous refresh
    # token: only the holder of that token can read it back during the grace window.
    op.add_column("sessions", sa.Column("successor_enc", sa.LargeBinary), schema=S)
    op.create_table(
        "refresh_history",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "session_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("ix_refresh_history_session_id", "refresh_history", ["session_id"], schema=S)
    op.create_table(
        "action_tokens",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("new_email", sa.String(320)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_action_tokens_user_id", "action_tokens", ["user_id"], schema=S)
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"], schema=S)
    op.create_index("ix_audit_log_target_id", "audit_log", ["target_id"], schema=S)
    op.create_index(
        "ix_sessions_user_live",
        "sessions",
        ["user_id"],
        schema=S,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_user_live", "sessions", schema=S)
    op.drop_index("ix_audit_log_target_id", "audit_log", schema=S)
    op.drop_index("ix_audit_log_actor_id", "audit_log", schema=S)
    op.drop_table("action_tokens", schema=S)
    op.drop_table("refresh_history", schema=S)
    op.drop_column("sessions", "successor_enc", schema=S)
