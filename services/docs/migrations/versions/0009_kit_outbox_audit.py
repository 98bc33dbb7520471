"""the kit's outbox and audit shapes: outbox.headers; audit_log.ip as INET and its four indexes (rows kept)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.kit.audit import create_audit_indexes

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "docs"


def upgrade() -> None:
    # services/kit/outbox.py: unsent rows stay and go out with no headers but their Nats-Msg-Id.
    op.add_column(
        "outbox",
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=S,
    )
    # services/kit/audit.py: the IP as INET. A stored value that is not an address becomes NULL instead of
    # failing the migration (the gateway only ever sent addresses; the column never checked).
    op.execute(
        f"""CREATE FUNCTION {S}.try_inet(value text) RETURNS inet LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN RETURN value::inet; EXCEPTION WHEN others THEN RETURN NULL; END $$"""
    )
    op.execute(f"ALTER TABLE {S}.audit_log ALTER COLUMN ip TYPE inet USING {S}.try_inet(ip)")
    op.execute(f"DROP FUNCTION {S}.try_inet(text)")
    op.drop_index("ix_audit_log_target", "audit_log", schema=S)
    create_audit_indexes(S)


def downgrade() -> None:
    for column in ("at", "action", "actor_id", "target_id"):
        op.drop_index(f"ix_audit_log_{column}", "audit_log", schema=S)
    op.create_index("ix_audit_log_target", "audit_log", ["target_id"], schema=S)
    op.execute(f"ALTER TABLE {S}.audit_log ALTER COLUMN ip TYPE varchar(64) USING host(ip)")
    op.drop_column("outbox", "headers", schema=S)
