"""apps registry, user grants, groups, memberships, group grants, defaults applied, audit log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "permissions"


def _now() -> sa.sql.functions.now:
    return sa.func.now()


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("icon", sa.String(80), nullable=False, server_default=""),
        sa.Column("route", sa.String(120), nullable=False),
        sa.Column("version", sa.String(40), nullable=False, server_default=""),
        sa.Column("manifest_default_grant", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("default_grant_override", sa.Boolean),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_table(
        "user_grants",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("app_key", sa.String(40), primary_key=True),
        sa.Column("granted_by", UUID(as_uuid=True)),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_table(
        "groups",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("added_by", UUID(as_uuid=True)),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"], schema=S)
    op.create_table(
        "group_grants",
        sa.Column(
            "group_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{S}.groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("app_key", sa.String(40), primary_key=True),
        sa.Column("granted_by", UUID(as_uuid=True)),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_table(
        "defaults_applied",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=S,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_id", UUID(as_uuid=True)),
        sa.Column("user_id", UUID(as_uuid=True)),
        sa.Column("group_id", UUID(as_uuid=True)),
        sa.Column("app_key", sa.String(40)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=S,
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema=S)
    op.create_index("ix_audit_log_action", "audit_log", ["action"], schema=S)
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"], schema=S)


def downgrade() -> None:
    for t in (
        "audit_log",
        "defaults_applied",
        "group_grants",
        "group_members",
        "groups",
        "user_grants",
        "apps",
    ):
        op.drop_table(t, schema=S)
