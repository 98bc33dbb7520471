"""Profile service: one profile per user (their own only), and the avatar image.

Validation lives in the models, so the gateway and the service refuse the same things with the
same field names: the phone is parsed by `phonenumbers` and stored in E.164, the time zone must be
one of `zoneinfo.available_timezones()`, the locale one of `LOCALES`.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime
from typing import Literal
from uuid import UUID

import phonenumbers
from pydantic import Base64Bytes, Field, field_validator

from .base import Contract, Empty, Rpc, Text, health_rpc

LOCALES = ("en", "ru")
Locale = Literal["en", "ru"]
Theme = Literal["light", "dark", "system"]

# Avatars: what is accepted, how big, and what is served.
AVATAR_BUCKET = "avatars"
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MAX_PIXELS = (
    16_000_000  # decoded only up to 16 MP: larger claimed dimensions are refused (issue 13 item 14)
)
AVATAR_SIZE_PX = 256
AVATAR_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@functools.cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalize_phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("enter the phone number in international format, e.g. +44 20 7946 0958") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("this is not a valid phone number; check the country code and the digits")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class ProfilePublic(Contract):
    user_id: UUID
    display_name: str | None = None
    full_name: str | None = None
    phone: str | None = None  # E.164
    job_title: str | None = None
    locale: Locale = "en"
    time_zone: str = "UTC"
    theme: Theme = "system"
    has_avatar: bool = False
    avatar_updated_at: datetime | None = None
    updated_at: datetime


class ProfileUpdate(Contract):
    """PATCH body: only the fields sent (not null) change; an empty string clears an optional text
    field. Anything else (`user_id`, `role`, `email`…) is refused by `extra="forbid"`."""

    display_name: Text | None = Field(default=None, max_length=80)
    full_name: Text | None = Field(default=None, max_length=200)
    phone: Text | None = Field(default=None, max_length=40)
    job_title: Text | None = Field(default=None, max_length=120)
    locale: Locale | None = None
    time_zone: Text | None = Field(default=None, max_length=64)
    theme: Theme | None = None

    @field_validator("display_name", "full_name", "job_title")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return None if v is None else " ".join(v.split())

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return v and ""
        return normalize_phone(v.strip())

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, v: str | None) -> str | None:
        if v is not None and v not in time_zones():
            raise ValueError("unknown time zone; use an IANA name such as Europe/Berlin or America/New_York")
        return v


class AvatarUpload(Contract):
    """The image bytes, base64 in JSON (≤ 2 MB decoded, far under NATS's max payload)."""

    data: Base64Bytes


class AvatarImage(Contract):
    content_type: str
    data: Base64Bytes
    updated_at: datetime


class UserProfileRef(Contract):
    user_id: UUID


PROFILE_HEALTH = health_rpc("profile")

PROFILE_GET = Rpc(
    "profile.profile.get",
    Empty,
    ProfilePublic,
    access="user",
    summary="The caller's profile (created on first read)",
)
PROFILE_UPDATE = Rpc(
    "profile.profile.update",
    ProfileUpdate,
    ProfilePublic,
    access="user",
    summary="Change the caller's profile",
)
PROFILE_GET_USER = Rpc(
    "profile.profile.get_user",
    UserProfileRef,
    ProfilePublic,
    access="admin",
    summary="Any user's profile (admin)",
)
AVATAR_SET = Rpc(
    "profile.avatar.set",
    AvatarUpload,
    ProfilePublic,
    access="user",
    summary="Replace the caller's avatar (PNG, JPEG or WebP, checked by content)",
)
AVATAR_GET = Rpc(
    "profile.avatar.get",
    Empty,
    AvatarImage,
    access="user",
    summary=f"The caller's avatar, {AVATAR_SIZE_PX} px, re-encoded",
)
AVATAR_DELETE = Rpc(
    "profile.avatar.delete", Empty, ProfilePublic, access="user", summary="Remove the caller's avatar"
)
