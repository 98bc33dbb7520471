"""The rows of the profile table as the handlers read them: SQLAlchemy rows, typed by attribute."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from contracts.profile import Locale, Theme


class ProfileRow(Protocol):
    user_id: UUID
    display_name: str | None
    full_name: str | None
    phone: str | None
    job_title: str | None
    locale: Locale
    time_zone: str
    theme: Theme
    avatar_object: str | None  # name in the `avatars` Object Store bucket
    avatar_content_type: str | None
    avatar_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
