"""The profile service's tables (schema `profile`)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, func
from sqlalchemy.dialects.postgresql import UUID

from services.kit.db import service_metadata

metadata = service_metadata("profile")

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("display_name", String(80)),
    Column("full_name", String(200)),
    Column("phone", String(40)),
    Column("job_title", String(120)),
    Column("locale", String(8), nullable=False, server_default="en"),
    Column("time_zone", String(64), nullable=False, server_default="UTC"),
    Column("theme", String(8), nullable=False, server_default="system"),
    Column("avatar_object", String(80)),  # name in the `avatars` Object Store bucket
    Column("avatar_content_type", String(32)),
    Column("avatar_updated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
