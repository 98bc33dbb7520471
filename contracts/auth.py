"""Auth service subjects and models: accounts, sessions, tokens, recovery, administration, audit."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, EmailStr, Field, StringConstraints
from pydantic.networks import validate_email

from .base import Contract, Empty, Event, Progress, Rpc, Text, WireSecret, health_rpc
from .streams import AUTH_STREAM

Role = Literal["user", "admin"]
# Letters and digits of any script, `.`, `_` and `-`; unique regardless of case; never an email address.
USERNAME_RE = r"^[\w.-]{3,50}$"
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=50, pattern=USERNAME_RE)
]
USERNAME_PATTERN = re.compile(USERNAME_RE)

# ---- accounts ---------------------------------------------------------------------------------


class RegisterUser(Contract):
    email: EmailStr
    password: WireSecret = Field(min_length=1, max_length=1024)
    full_name: Text | None = Field(default=None, max_length=200)
    username: Username | None = Field(default=None, description="optional; sign in with it or the email")


def email_or_username(value: str) -> str:
    """An email address (anything with `@`, checked as one) or a username; anything else is refused."""
    value = value.strip()
    if "@" in value:
        validate_email(value)
    elif not USERNAME_PATTERN.match(value):
        raise ValueError("not an email address or a username (3–50 letters, digits, '.', '_' or '-')")
    return value


class LoginRequest(Contract):
    email: Annotated[Text, AfterValidator(email_or_username)] = Field(
        min_length=1, max_length=320, description="the email address or the username"
    )
    password: WireSecret = Field(min_length=1, max_length=1024)
    remember_me: bool = False


class UserPublic(Contract):
    id: UUID
    email: EmailStr
    username: str | None = None
    full_name: str | None = None
    role: Role
    is_active: bool
    email_verified: bool = False
    created_at: datetime
    second_factor: bool = Field(default=False, description="a TOTP app or a passkey is set up")
    must_enrol_second_factor: bool = Field(
        default=False, description="the security policy requires a second factor this account lacks"
    )


class TokenPair(Contract):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_expires_in: int
    user: UserPublic


class RefreshRequest(Contract):
    refresh_token: WireSecret = Field(min_length=1, max_length=512)


class LogoutRequest(Contract):
    """Ends the caller's session: the one of the access token, else the one of `refresh_token`."""

    refresh_token: WireSecret | None = Field(default=None, max_length=512)


class Ack(Contract):
    message: str


class SessionInfo(Contract):
    id: UUID
    device: str | None = None
    ip: str | None = None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    remember_me: bool = False
    current: bool = False


class SessionList(Contract):
    items: list[SessionInfo]


class EndSession(Contract):
    session_id: UUID


class ChangePassword(Contract):
    current_password: WireSecret = Field(min_length=1, max_length=1024)
    new_password: WireSecret = Field(min_length=1, max_length=1024)


class ForgotPassword(Contract):
    email: EmailStr


class ResetPassword(Contract):
    token: WireSecret = Field(min_length=1, max_length=512)
    new_password: WireSecret = Field(min_length=1, max_length=1024)


class VerifyEmail(Contract):
    token: WireSecret = Field(min_length=1, max_length=512)


class ChangeEmail(Contract):
    password: WireSecret = Field(min_length=1, max_length=1024)
    new_email: EmailStr


class SetUsername(Contract):
    username: Username | None = Field(description="the new username, or null to remove it")


# ---- administration -----------------------------------------------------------------------------


# Paging by offset makes PostgreSQL read every skipped row; past this, narrow the filter instead.
MAX_OFFSET = 1_000_000


class ListUsers(Contract):
    search: Text | None = Field(default=None, max_length=200, description="part of the email or name")
    role: Role | None = None
    state: Literal["active", "inactive"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class UserPage(Contract):
    items: list[UserPublic]
    total: int
    limit: int
    offset: int


class AdminUserChanges(Contract):
    """What an admin may change on an account (the HTTP body of PATCH admin/users/{id})."""

    role: Role | None = None
    is_active: bool | None = None


class AdminUpdateUser(AdminUserChanges):
    user_id: UUID


class AdminUserRef(Contract):
    user_id: UUID


class ListAudit(Contract):
    action: Text | None = Field(
        default=None, max_length=64, description="exact action, or a prefix ending in '.'"
    )
    actor_id: UUID | None = None
    target_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class AuditEntry(Contract):
    id: UUID
    at: datetime
    action: str
    actor_id: UUID | None = None
    target_id: UUID | None = None
    ip: str | None = None
    request_id: str | None = None
    details: dict[str, object] = Field(default_factory=dict)


class AuditPage(Contract):
    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


# ---- keys -----------------------------------------------------------------------------------------


class Jwk(Contract):
    kty: str
    kid: str
    use: str = "sig"
    alg: str = "RS256"
    n: str
    e: str


class Jwks(Contract):
    keys: list[Jwk]


# ---- events ---------------------------------------------------------------------------------------


class UserRegistered(Contract):
    user_id: UUID
    email: EmailStr
    full_name: str | None = None
    role: Role
    registered_at: datetime


class UserChanged(Contract):
    """Role, active flag or (confirmed) email of an account changed; carries the account's new state."""

    user_id: UUID
    role: Role
    is_active: bool
    email: EmailStr | None = None
    changed_at: datetime


class UserDeleted(Contract):
    """An account is gone: services forget what they hold for it (profiles, grants, documents)."""

    user_id: UUID
    deleted_at: datetime


AUTH_HEALTH = health_rpc("auth")
REGISTER = Rpc("auth.user.register", RegisterUser, UserPublic, access="public", summary="Create an account")
LOGIN = Rpc(
    "auth.session.login", LoginRequest, TokenPair, access="public", summary="Password login; opens a session"
)
REFRESH = Rpc(
    "auth.session.refresh",
    RefreshRequest,
    TokenPair,
    access="public",
    summary="Rotate a refresh token: a new pair; reuse of a rotated token ends the session",
)
LOGOUT = Rpc(
    "auth.session.logout",
    LogoutRequest,
    Ack,
    access="public",
    summary="End the caller's session",
    effect="account",
)
LOGOUT_ALL = Rpc(
    "auth.session.logout_all",
    Empty,
    Ack,
    access="user",
    summary="End every session of the caller",
    effect="account",
)
SESSIONS = Rpc(
    "auth.session.list",
    Empty,
    SessionList,
    access="user",
    summary="The caller's live sessions",
    effect="account",
)
END_SESSION = Rpc(
    "auth.session.end",
    EndSession,
    Ack,
    access="user",
    summary="End one of the caller's sessions",
    effect="account",
)
ME = Rpc("auth.user.me", Empty, UserPublic, access="user", summary="The calling user")
CHANGE_PASSWORD = Rpc(
    "auth.password.change",
    ChangePassword,
    Ack,
    access="user",
    summary="Change the password (current one needed); other sessions end",
    effect="account",
)
FORGOT_PASSWORD = Rpc(
    "auth.password.forgot",
    ForgotPassword,
    Ack,
    access="public",
    summary="Mail a reset link if the account exists (same answer either way)",
)
RESET_PASSWORD = Rpc(
    "auth.password.reset",
    ResetPassword,
    Ack,
    access="public",
    summary="Set a new password with a reset token; every session ends",
)
VERIFY_EMAIL = Rpc(
    "auth.email.verify",
    VerifyEmail,
    UserPublic,
    access="public",
    summary="Confirm an email address with its verification token",
)
RESEND_VERIFICATION = Rpc(
    "auth.email.resend",
    Empty,
    Ack,
    access="user",
    summary="Mail a new verification link for the current address",
    effect="account",
)
CHANGE_EMAIL = Rpc(
    "auth.email.change",
    ChangeEmail,
    Ack,
    access="user",
    summary="Ask to change the email (password needed); applies once the new address is verified",
    effect="account",
)
SET_USERNAME = Rpc(
    "auth.username.set",
    SetUsername,
    UserPublic,
    access="user",
    summary="Choose, change or remove my username (unique regardless of case)",
    effect="account",
)
ADMIN_LIST_USERS = Rpc(
    "auth.user.list", ListUsers, UserPage, access="admin", summary="Admin: search accounts"
)
ADMIN_UPDATE_USER = Rpc(
    "auth.user.update",
    AdminUpdateUser,
    UserPublic,
    access="admin",
    summary="Admin: change role or active flag",
)
ADMIN_END_SESSIONS = Rpc(
    "auth.user.end_sessions",
    AdminUserRef,
    Ack,
    access="admin",
    summary="Admin: end every session of an account",
)
ADMIN_START_RESET = Rpc(
    "auth.user.start_reset",
    AdminUserRef,
    Ack,
    access="admin",
    summary="Admin: mail the account a password-reset link",
)
ADMIN_DELETE_USER = Rpc(
    "auth.user.delete",
    AdminUserRef,
    Ack,
    access="admin",
    summary="Admin: delete an account; every service forgets it (events.auth.user_deleted)",
)
ADMIN_AUDIT = Rpc("auth.audit.list", ListAudit, AuditPage, access="admin", summary="Admin: the audit trail")
JWKS = Rpc("auth.keys.jwks", Empty, Jwks, access="public", summary="Public keys that verify access tokens")

USER_REGISTERED = Event(
    "events.auth.user_registered", UserRegistered, stream=AUTH_STREAM.name, summary="A new account exists"
)
USER_CHANGED = Event(
    "events.auth.user_changed",
    UserChanged,
    stream=AUTH_STREAM.name,
    summary="An account's role or active flag changed",
)
USER_DELETED = Event(
    "events.auth.user_deleted", UserDeleted, stream=AUTH_STREAM.name, summary="An account was deleted"
)

# Token claims every verifier checks.
TOKEN_AUDIENCE = "atrium"
TOKEN_ISSUER = "atrium-auth"
ACCESS_TOKEN_TYPE = "access"
# NATS KV bucket the auth service writes and every verifier watches: revoked sessions
# (`session.<sid>`) and the live state of each user (`user.<id>`: active, role, tokens valid after).
AUTH_STATE_BUCKET = "auth_state"


class UserState(Contract):
    active: bool = True
    role: Role = "user"
    # Epoch seconds; access tokens whose `iat` (whole seconds) is in an earlier second are refused.
    # Tokens of the same second are caught by their session's revocation (`session.<sid>`).
    tokens_valid_after: float = 0.0


class AuthStateEntry(Contract):
    """One `auth_state` entry the auth service could not store yet: verifiers apply it at once anyway."""

    key: str = Field(max_length=100)  # `session.<sid>` or `user.<id>`
    value: str | None = Field(default=None, max_length=1000)  # None: the key is deleted


AUTH_STATE_PUSH = Progress(
    "progress.auth.state",
    AuthStateEntry,
    summary="Revocations the auth_state bucket refused (full, unreachable): every verifier applies them "
    "until the auth service has stored them",
)
