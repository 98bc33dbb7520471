"""The rows of the auth tables as the handlers read them: SQLAlchemy rows, typed by attribute."""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Literal, Protocol
from uuid import UUID

from contracts.auth import Role
from contracts.identity import PatScope

LinkKind = Literal["verify", "reset"]  # action_tokens.kind: confirm an address, reset a password


class UserRow(Protocol):
    id: UUID
    email: str
    username: str | None
    password_hash: str
    full_name: str | None
    role: Role
    is_active: bool
    email_verified: bool
    created_at: datetime
    updated_at: datetime


class SessionRow(Protocol):
    id: UUID
    user_id: UUID
    refresh_hash: str
    previous_hash: str | None
    rotated_at: datetime | None
    remember_me: bool
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    ip: IPv4Address | IPv6Address | None
    user_agent: str | None
    successor_enc: bytes | None


class LinkTokenRow(Protocol):
    """A single-use link (`action_tokens`): only its SHA-256 is stored."""

    id: UUID
    user_id: UUID
    kind: LinkKind
    token_hash: str
    new_email: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class AccessTokenRow(Protocol):
    """A personal access token (`access_tokens`): only its SHA-256 is stored."""

    id: UUID
    user_id: UUID
    name: str
    token_hash: str
    prefix: str
    scopes: list[PatScope]
    apps: list[str] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: IPv4Address | IPv6Address | None


class PasskeyRow(Protocol):
    id: UUID
    user_id: UUID
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    name: str
    aaguid: str | None
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None


class ChallengeRow(Protocol):
    """A sign-in challenge (`login_challenges`): a second step, or a WebAuthn ceremony."""

    id: UUID
    user_id: UUID | None
    purpose: str
    token_hash: str | None
    challenge: bytes | None
    remember_me: bool
    attempts: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class SsoProviderRow(Protocol):
    id: str
    label: str
    issuer: str
    client_id: str
    client_secret_enc: str | None
    scopes: str
    link_by_email: bool
    create_users: bool
    groups_claim: str | None
    group_map: dict[str, str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
