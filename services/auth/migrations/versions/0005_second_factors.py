"""second factors: TOTP secrets (encrypted), hashed recovery codes, passkeys, sign-in challenges, the policy

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "auth"


def _user_fk(nullable: bool = False, primary_key: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "user_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "totp_factors",
        _user_fk(primary_key=True),
        sa.Column("secret_enc", sa.Text, nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _user_fk(),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"], schema=S)
    op.create_table(
        "passkeys",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _user_fk(),
        sa.Column("credential_id", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transports", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("aaguid", sa.String(36)),
        sa.Column("backed_up", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_passkeys_user_id", "passkeys", ["user_id"], schema=S)
    op.create_table(
        "login_challenges",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _user_fk(nullable=True),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("challenge", sa.LargeBinary),
        sa.Column("remember_me", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_login_challenges_user_id", "login_challenges", ["user_id"], schema=S)
    op.create_table(
        "auth_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    for table in ("auth_settings", "login_challenges", "passkeys", "recovery_codes", "totp_factors"):
        op.drop_table(table, schema=S)
