"""the kit's outbox; the audit log in the kit's shape (target_id and ip; the user, group and app go into
target_id and details), rows kept

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import INET, UUID

from services.kit.audit import create_audit_indexes
from services.kit.outbox import create_outbox_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "permissions"


def upgrade() -> None:
    create_outbox_table(S)
    op.add_column("audit_log", sa.Column("target_id", UUID(as_uuid=True)), schema=S)
    op.add_column("audit_log", sa.Column("ip", INET), schema=S)
    # What the action is about becomes the target (the group for group actions, else the user); the
    # member of a group action and the app move into the details.
    op.execute(
        f"""
        UPDATE "{S}".audit_log SET
            target_id = coalesce(group_id, user_id),
            details = details || jsonb_strip_nulls(jsonb_build_object(
                'user_id', CASE WHEN group_id IS NOT NULL THEN user_id::text END,
                'app_key', app_key))
        """
    )
    op.drop_index("ix_audit_log_user_id", "audit_log", schema=S)
    for column in ("user_id", "group_id", "app_key"):
        op.drop_column("audit_log", column, schema=S)
    op.drop_index("ix_audit_log_at", "audit_log", schema=S)
    op.drop_index("ix_audit_log_action", "audit_log", schema=S)
    create_audit_indexes(S)


def downgrade() -> None:
    op.add_column("audit_log", sa.Column("user_id", UUID(as_uuid=True)), schema=S)
    op.add_column("audit_log", sa.Column("group_id", UUID(as_uuid=True)), schema=S)
    op.add_column("audit_log", sa.Column("app_key", sa.String(40)), schema=S)
    op.execute(
        f"""
        UPDATE "{S}".audit_log SET
            group_id = CASE WHEN action LIKE 'group.%' THEN target_id END,
            user_id = CASE WHEN action LIKE 'group.%' THEN (details->>'user_id')::uuid ELSE target_id END,
            app_key = details->>'app_key',
            details = details - 'user_id' - 'app_key'
        """
    )
    for column in ("at", "action", "actor_id", "target_id"):
        op.drop_index(f"ix_audit_log_{column}", "audit_log", schema=S)
    op.drop_column("audit_log", "target_id", schema=S)
    op.drop_column("audit_log", "ip", schema=S)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema=S)
    op.create_index("ix_audit_log_action", "audit_log", ["action"], schema=S)
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"], schema=S)
    op.drop_table("outbox", schema=S)
