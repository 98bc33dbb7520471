"""The auth service's tables (schema `auth`)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, UUID

from services.kit.audit import audit_table
from services.kit.db import service_metadata
from services.kit.outbox import outbox_table

metadata = service_metadata("auth")

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("full_name", String(200)),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("email_verified", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_users_email_lower", func.lower(text("email")), unique=True),
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

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
