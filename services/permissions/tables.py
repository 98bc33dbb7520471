"""The permissions service's tables (schema `permissions`)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, String, Table, func, text
from sqlalchemy.dialects.postgresql import UUID

from services.kit.audit import audit_table
from services.kit.db import service_metadata
from services.kit.outbox import outbox_table

metadata = service_metadata("permissions")

apps = Table(
    "apps",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("icon", String(80), nullable=False, server_default=""),
    Column("route", String(120), nullable=False),
    Column("version", String(40), nullable=False, server_default=""),
    Column("manifest_default_grant", Boolean, nullable=False, server_default=text("false")),
    Column("default_grant_override", Boolean),  # the admin's choice; NULL = follow the manifest
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

user_grants = Table(
    "user_grants",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("app_key", String(40), primary_key=True),
    Column("granted_by", UUID(as_uuid=True)),  # NULL: a default grant applied at registration
    Column("granted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

groups = Table(
    "groups",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("description", String(500), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", UUID(as_uuid=True), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", UUID(as_uuid=True), primary_key=True, index=True),
    Column("added_by", UUID(as_uuid=True)),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

group_grants = Table(
    "group_grants",
    metadata,
    Column("group_id", UUID(as_uuid=True), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("app_key", String(40), primary_key=True),
    Column("granted_by", UUID(as_uuid=True)),
    Column("granted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per user whose default grants were applied: a redelivered registration applies nothing
# again, and a default grant an admin revoked later is not brought back.
defaults_applied = Table(
    "defaults_applied",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audit_log = audit_table(metadata)
outbox = outbox_table(metadata)
