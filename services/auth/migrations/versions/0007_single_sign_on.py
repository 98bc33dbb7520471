"""single sign-on: OpenID Connect providers (client secret encrypted) and the identities linked to accounts

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "auth"


def upgrade() -> None:
    op.create_table(
        "sso_providers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("client_secret_enc", sa.Text),
        sa.Column("scopes", sa.String(300), nullable=False),
        sa.Column("link_by_email", sa.Boolean, nullable=False),
        sa.Column("create_users", sa.Boolean, nullable=False),
        sa.Column("groups_claim", sa.String(80)),
        sa.Column("group_map", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "sso_identities",
        sa.Column("provider_id", sa.String(40), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column(
            "user_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("email", sa.String(320)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_sso_identities_user_id", "sso_identities", ["user_id"], schema=S)


def downgrade() -> None:
    op.drop_table("sso_identities", schema=S)
    op.drop_table("sso_providers", schema=S)
