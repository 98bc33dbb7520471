"""The auth service's tables (schema `auth`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID

from services.kit.audit import audit_table
from services.kit.db import service_metadata
from services.kit.outbox import outbox_table
from services.kit.ratelimit import rate_limit_table

metadata = service_metadata("auth")

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("username", String(50)),
    Column("password_hash", Text, nullable=False),
    Column("full_name", String(200)),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("email_verified", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_users_email_lower", func.lower(text("email")), unique=True),
    Index("uq_users_username_lower", func.lower(text("username")), unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    Column("previous_hash", String(64), index=True),
    Column("rotated_at", DateTime(timezone=True)),
    Column("remember_me", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(64)),
    Column("ip", INET),
    Column("user_agent", String(400)),
    Column("successor_enc", LargeBinary),
    # A user's live sessions (session lists, logout everywhere) without the revoked history.
    Index("ix_sessions_user_live", "user_id", postgresql_where=text("revoked_at IS NULL")),
)

# Every refresh token a session has rotated away from: presenting one again is reuse.
refresh_history = Table(
    "refresh_history",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "session_id",
        UUID(as_uuid=True),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("rotated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Single-use email verification ("verify") and password reset ("reset") tokens, stored as SHA-256.
action_tokens = Table(
    "action_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("kind", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("new_email", String(320)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

# Where each account has signed in from (SHA-256 of the user agent): a sign-in from a device not seen
# before is mailed to the owner.
known_devices = Table(
    "known_devices",
    metadata,
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("device", String(120)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A confirmed TOTP factor (or one being enrolled: `confirmed_at` null). The secret is AES-GCM-encrypted under
# the platform secret; `last_step` is the last accepted RFC 6238 time step, so a code is never accepted twice.
totp_factors = Table(
    "totp_factors",
    metadata,
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret_enc", Text, nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("last_step", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Single-use recovery codes (80 random bits each), only their SHA-256 stored.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("used_at", DateTime(timezone=True)),
)

# WebAuthn credentials (passkeys): several per account, each named by its owner.
passkeys = Table(
    "passkeys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("credential_id", LargeBinary, nullable=False, unique=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False, server_default="0"),
    Column("transports", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("name", String(100), nullable=False),
    Column("aaguid", String(36)),
    Column("backed_up", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),
)

# Short-lived sign-in challenges: the second step after a right password (`token_hash` of the step token),
# and WebAuthn ceremonies (`challenge`, with no user for a passwordless passkey sign-in).
login_challenges = Table(
    "login_challenges",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True),
    Column("purpose", String(24), nullable=False),
    Column("token_hash", String(64), unique=True),
    Column("challenge", LargeBinary),
    Column("remember_me", Boolean, nullable=False, server_default=text("false")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

# Personal access tokens (`atp_…`, 256 random bits): only the SHA-256 and a short prefix for display.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("apps", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("last_used_ip", INET),
)

# OpenID Connect providers an administrator configured ("Sign in with …"); the client secret encrypted.
sso_providers = Table(
    "sso_providers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("label", String(80), nullable=False),
    Column("issuer", String(300), nullable=False),
    Column("client_id", String(200), nullable=False),
    Column("client_secret_enc", Text),
    Column("scopes", String(300), nullable=False),
    Column("link_by_email", Boolean, nullable=False),
    Column("create_users", Boolean, nullable=False),
    Column("groups_claim", String(80)),
    Column("group_map", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Which provider subject is which account (linked at its first single sign-on).
sso_identities = Table(
    "sso_identities",
    metadata,
    Column("provider_id", String(40), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("email", String(320)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_login_at", DateTime(timezone=True)),
)

# The external auth server's tokens of a session that signed in through it, AES-GCM-encrypted under the
# platform secret; refreshed before `expires_at` by a background loop, dropped when the session ends.
external_tokens = Table(
    "external_tokens",
    metadata,
    Column("session_id", UUID(as_uuid=True), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("access_enc", Text, nullable=False),
    Column("refresh_enc", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("refreshed_at", DateTime(timezone=True)),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", String(300)),
)

# Settings an administrator changes at run time (the security policy, single sign-on options).
auth_settings = Table(
    "auth_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
# Sign-in, registration, refresh… limits, counted across every auth process (kit/ratelimit.py).
rate_limits = rate_limit_table(metadata)
