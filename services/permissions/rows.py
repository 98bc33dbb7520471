"""The rows of the permissions tables as the handlers read them: SQLAlchemy rows, typed by attribute."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID


class AppRow(Protocol):
    key: str
    name: str
    description: str
    icon: str
    route: str
    version: str
    manifest_default_grant: bool
    default_grant_override: bool | None  # the admin's choice; None = follow the manifest
    first_seen_at: datetime
    last_seen_at: datetime


class GrantRow(Protocol):
    user_id: UUID
    app_key: str
    granted_by: UUID | None  # None: a default grant applied at registration
    granted_at: datetime
