"""Auth service subjects for the second part of identity: second factors (TOTP with recovery codes,
passkeys), the two-step sign-in, the security policy, personal access tokens, single sign-on and the
external authentication server. The account, session and recovery subjects are in `auth.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from .auth import (
    CHANGE_PASSWORD,
    END_SESSION,
    LOGOUT,
    LOGOUT_ALL,
    ME,
    RESEND_VERIFICATION,
    SESSIONS,
    Ack,
    TokenPair,
)
from .base import Contract, Empty, Event, Rpc, Text, WireSecret
from .docs_api import APP_KEY as DOCUMENTS_APP
from .streams import AUTH_STREAM

# ---- second factors -------------------------------------------------------------------------------

SecondFactorMethod = Literal["totp", "recovery", "passkey"]
SecondFactorPolicy = Literal["optional", "admins", "everyone"]
# The `details.reason` of the 401 that login answers when the password was right and a second factor
# is needed; `details` then also carries `step_token`, `methods` and `expires_in`.
SECOND_FACTOR_REQUIRED = "second_factor_required"
TOTP_CODE_DIGITS = 6
RECOVERY_CODE_COUNT = 10


class TotpEnrolment(Contract):
    """A new, not yet confirmed TOTP secret: scan the QR code (or type the secret), then confirm a code."""

    secret: str = Field(description="base32, for typing into an authenticator app")
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code: an SVG `data:` URL for an <img>")


class TotpCode(Contract):
    code: str = Field(min_length=6, max_length=10, pattern=r"^[0-9 ]+$")


class RecoveryCodes(Contract):
    """Shown once: only their hashes are kept."""

    codes: list[str]


class ConfirmedChange(Contract):
    """A change to the second factors: the password and a current code (TOTP or recovery code)."""

    password: WireSecret = Field(min_length=1, max_length=1024)
    code: Text = Field(min_length=6, max_length=24, description="a TOTP code or a recovery code")


class SecondFactorStatus(Contract):
    totp: bool
    recovery_codes_left: int
    passkeys: int
    required: bool = Field(description="the policy asks this account for a second factor")


class SecondStep(Contract):
    """The second step of a sign-in: the `step_token` from the login's 401 and a proof of one method."""

    step_token: WireSecret = Field(min_length=1, max_length=200)
    method: SecondFactorMethod
    code: Text | None = Field(default=None, max_length=24, description="TOTP code or recovery code")
    credential: dict[str, Any] | None = Field(
        default=None, description="passkey: the PublicKeyCredential from navigator.credentials.get()"
    )


class SecurityPolicy(Contract):
    second_factor: SecondFactorPolicy = Field(
        default="optional", description="who must have a second factor: nobody, administrators, everyone"
    )

    def requires(self, role: str) -> bool:
        """Whether an account with `role` must have a second factor."""
        return self.second_factor == "everyone" or (self.second_factor == "admins" and role == "admin")


# The `details.reason` of the 403 every service answers a session whose account the policy asks for a
# second factor it has not set up: until it enrols one it may call only `ENROLMENT_SUBJECTS`.
ENROL_SECOND_FACTOR = "enrol_second_factor"
# Removing the last second factor while the policy requires one (409 `conflict`, details.reason).
LAST_SECOND_FACTOR = "last_second_factor"


TOTP_START = Rpc(
    "auth.totp.start",
    Empty,
    TotpEnrolment,
    access="user",
    summary="Begin TOTP enrolment: a new secret and its QR code (confirm with a code)",
    effect="account",
)
TOTP_CONFIRM = Rpc(
    "auth.totp.confirm",
    TotpCode,
    RecoveryCodes,
    access="user",
    summary="Confirm TOTP with a first code; answers the recovery codes, once",
    effect="account",
)
TOTP_DISABLE = Rpc(
    "auth.totp.disable",
    ConfirmedChange,
    Ack,
    access="user",
    summary="Turn TOTP off (password and a code needed)",
    effect="account",
)
RECOVERY_REGENERATE = Rpc(
    "auth.recovery.regenerate",
    ConfirmedChange,
    RecoveryCodes,
    access="user",
    summary="New recovery codes (password and a code needed); the old ones stop working",
    effect="account",
)
SECOND_FACTOR_STATUS = Rpc(
    "auth.second_factor.status",
    Empty,
    SecondFactorStatus,
    access="user",
    summary="My second factors and whether the policy requires one",
    effect="account",
)
SECOND_STEP = Rpc(
    "auth.session.second_step",
    SecondStep,
    TokenPair,
    access="public",
    summary="Finish a sign-in with a TOTP code, a recovery code or a passkey",
)
POLICY_GET = Rpc(
    "auth.policy.get", Empty, SecurityPolicy, access="admin", summary="Admin: the sign-in security policy"
)
POLICY_UPDATE = Rpc(
    "auth.policy.update",
    SecurityPolicy,
    SecurityPolicy,
    access="admin",
    summary="Admin: require a second factor of administrators or of everyone",
)


# ---- personal access tokens ---------------------------------------------------------------------

PatScope = Literal["read", "write", "admin"]
# A personal access token: this prefix and 43 base64url characters (256 random bits). Only its SHA-256
# is stored. The gateway exchanges it (`auth.pat.exchange`) for a short-lived access JWT that carries the
# scopes (`scp`) and apps (`apps`), with the token's id as its `sid`, so every service checks it like any
# access token and a revocation reaches every service through `auth_state` (`session.<token id>`).
PAT_PREFIX = "atp_"
PAT_MAX_DAYS = 365
PAT_SCOPES: tuple[PatScope, ...] = ("read", "write", "admin")
# The services that serve each app, for tokens limited to some apps (other services are the platform's).
APP_SERVICES: dict[str, frozenset[str]] = {DOCUMENTS_APP: frozenset({"docs", "extract", "ai"})}


def app_of_service(service: str) -> str | None:
    return next((app for app, services in APP_SERVICES.items() if service in services), None)


class PatCreate(Contract):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    scopes: list[PatScope] = Field(min_length=1, max_length=3, description="read, write, admin")
    apps: list[Text] | None = Field(
        default=None,
        max_length=20,
        description="only these apps (e.g. documents); the platform's own subjects stay read-only",
    )
    expires_in_days: int = Field(default=90, ge=1, le=PAT_MAX_DAYS)


class PatInfo(Contract):
    id: UUID
    name: str
    prefix: str = Field(description="the first characters of the token, to recognise it")
    scopes: list[PatScope]
    apps: list[str] | None = None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    last_used_ip: str | None = None


class PatCreated(Contract):
    token: str = Field(description="shown once: only its hash is kept")
    info: PatInfo


class PatList(Contract):
    items: list[PatInfo]


class PatRef(Contract):
    token_id: UUID


class PatExchange(Contract):
    token: WireSecret = Field(min_length=1, max_length=200)
    purpose: Text = Field(default="", max_length=300, description="what it is used for: 'GET /api/v1/…'")


class PatAccess(Contract):
    access_token: str
    expires_in: int
    audited: bool = Field(description="each use is audited (admin scope): do not reuse the access token")


PAT_CREATE = Rpc(
    "auth.pat.create",
    PatCreate,
    PatCreated,
    access="user",
    effect="account",
    summary="Create a personal access token (shown once)",
)
PAT_LIST = Rpc("auth.pat.list", Empty, PatList, access="user", effect="account", summary="My access tokens")
PAT_REVOKE = Rpc(
    "auth.pat.revoke",
    PatRef,
    Ack,
    access="user",
    effect="account",
    summary="Revoke one of my access tokens; refused everywhere at once",
)
PAT_EXCHANGE = Rpc(
    "auth.pat.exchange",
    PatExchange,
    PatAccess,
    access="public",
    summary="A short-lived access token for a personal access token (the gateway calls this)",
)


# ---- passkeys (WebAuthn) --------------------------------------------------------------------------


class PasskeyCeremony(Contract):
    """Options for `navigator.credentials.create()` / `.get()` (the WebAuthn JSON form, base64url
    fields) and the id to send back with the result; valid for a few minutes, once."""

    ceremony_id: UUID
    options: dict[str, Any]


class PasskeyRegister(Contract):
    ceremony_id: UUID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    credential: dict[str, Any] = Field(
        description="the PublicKeyCredential from navigator.credentials.create()"
    )


class PasskeyInfo(Contract):
    id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    backed_up: bool = False


class PasskeyList(Contract):
    items: list[PasskeyInfo]


class PasskeyRename(Contract):
    passkey_id: UUID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")


class PasskeyRemove(Contract):
    passkey_id: UUID
    password: WireSecret = Field(min_length=1, max_length=1024)


class PasskeyLoginStart(Contract):
    remember_me: bool = False


class PasskeyLogin(Contract):
    ceremony_id: UUID
    credential: dict[str, Any] = Field(description="the PublicKeyCredential from navigator.credentials.get()")


PASSKEY_REGISTER_OPTIONS = Rpc(
    "auth.passkey.register_options",
    Empty,
    PasskeyCeremony,
    access="user",
    effect="account",
    summary="Begin adding a passkey: options for navigator.credentials.create()",
)
PASSKEY_REGISTER = Rpc(
    "auth.passkey.register",
    PasskeyRegister,
    PasskeyInfo,
    access="user",
    effect="account",
    summary="Add a passkey: the new credential, verified against the ceremony",
)
PASSKEY_LIST = Rpc(
    "auth.passkey.list", Empty, PasskeyList, access="user", effect="account", summary="My passkeys"
)
PASSKEY_RENAME = Rpc(
    "auth.passkey.rename",
    PasskeyRename,
    PasskeyInfo,
    access="user",
    effect="account",
    summary="Rename a passkey",
)
PASSKEY_REMOVE = Rpc(
    "auth.passkey.remove",
    PasskeyRemove,
    Ack,
    access="user",
    effect="account",
    summary="Remove a passkey (password needed)",
)
PASSKEY_LOGIN_OPTIONS = Rpc(
    "auth.passkey.login_options",
    PasskeyLoginStart,
    PasskeyCeremony,
    access="public",
    summary="Begin a sign-in with a passkey (no email or password): options for navigator.credentials.get()",
)
PASSKEY_LOGIN = Rpc(
    "auth.passkey.login",
    PasskeyLogin,
    TokenPair,
    access="public",
    summary="Sign in with a passkey: the assertion, verified against the ceremony",
)


# ---- single sign-on (OpenID Connect) --------------------------------------------------------------

SSO_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"


class SsoButton(Contract):
    """A "Sign in with …" button of the sign-in page."""

    id: str
    label: str


class SsoButtons(Contract):
    items: list[SsoButton]


class SsoProviderFields(Contract):
    label: Text = Field(min_length=1, max_length=80, description='the button: "Sign in with <label>"')
    issuer: str = Field(
        min_length=8, max_length=300, pattern=r"^https?://[^\s]+$", description="the OpenID issuer URL"
    )
    client_id: Text = Field(min_length=1, max_length=200)
    scopes: str = Field(default="openid email profile", max_length=300, pattern=r"^[\x21-\x7e ]+$")
    link_by_email: bool = Field(
        default=True, description="sign in an existing account whose email is verified"
    )
    create_users: bool = Field(default=False, description="create an account on first sign-in (just in time)")
    groups_claim: Text | None = Field(default=None, max_length=80, description="e.g. groups")
    group_map: dict[str, UUID] = Field(
        default_factory=dict, description="a groups-claim value → the Atrium group it means"
    )
    enabled: bool = True


class SsoProviderUpsert(SsoProviderFields):
    id: str = Field(pattern=SSO_ID_PATTERN, description="a short name: letters, digits, '-'")
    client_secret: WireSecret | None = Field(
        default=None, max_length=500, description="stored encrypted; leave out to keep the stored one"
    )


class SsoProviderAdmin(SsoProviderFields):
    id: str
    client_secret_set: bool
    redirect_uri: str = Field(description="register this at the provider")


class SsoProviderList(Contract):
    items: list[SsoProviderAdmin]


class SsoProviderRef(Contract):
    id: str = Field(pattern=SSO_ID_PATTERN)


class SsoStart(Contract):
    provider: str = Field(pattern=SSO_ID_PATTERN)
    remember_me: bool = False


class SsoRedirect(Contract):
    authorization_url: str


class SsoFinish(Contract):
    provider: str = Field(pattern=SSO_ID_PATTERN)
    state: Text = Field(min_length=1, max_length=200)
    code: Text = Field(min_length=1, max_length=2000)


class SsoGroupsClaimed(Contract):
    """A single sign-on told which of the mapped Atrium groups the user belongs to: the permissions
    service adds them to `member_of` and removes them from the other `managed` groups."""

    user_id: UUID
    provider: str
    member_of: list[UUID]
    managed: list[UUID]
    claimed_at: datetime


SSO_BUTTONS = Rpc(
    "auth.sso.buttons", Empty, SsoButtons, access="public", summary='The "Sign in with …" buttons'
)
SSO_LIST = Rpc(
    "auth.sso.list", Empty, SsoProviderList, access="admin", summary="Admin: single sign-on providers"
)
SSO_UPSERT = Rpc(
    "auth.sso.upsert",
    SsoProviderUpsert,
    SsoProviderAdmin,
    access="admin",
    summary="Admin: add or change an OpenID Connect provider (its discovery is checked)",
)
SSO_DELETE = Rpc("auth.sso.delete", SsoProviderRef, Ack, access="admin", summary="Admin: remove a provider")
SSO_START = Rpc(
    "auth.sso.start",
    SsoStart,
    SsoRedirect,
    access="public",
    summary="Begin a single sign-on: the provider's authorization URL (state, nonce, PKCE)",
)
SSO_FINISH = Rpc(
    "auth.sso.finish",
    SsoFinish,
    TokenPair,
    access="public",
    summary="Finish a single sign-on with the provider's code: a session",
)
SSO_GROUPS_CLAIMED = Event(
    "events.auth.sso_groups",
    SsoGroupsClaimed,
    stream=AUTH_STREAM.name,
    summary="A single sign-on reported the user's mapped groups",
)


# ---- the external authentication server -----------------------------------------------------------


class ExternalAuthFields(Contract):
    enabled: bool = False
    token_url: str = Field(
        default="", max_length=300, pattern=r"^(https?://[^\s]+)?$", description="its OAuth2 token endpoint"
    )
    client_id: Text = Field(default="", max_length=200)
    scope: Text = Field(default="openid email profile offline_access", max_length=300)
    create_users: bool = Field(default=True, description="create the Atrium account at its first sign-in")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="per try; two more tries with backoff")
    circuit_cool_off_s: float = Field(
        default=30.0, ge=1, le=3600, description="after 5 failures in a row, stop calling it this long"
    )
    refresh_buffer_s: int | None = Field(
        default=None,
        ge=5,
        le=86400,
        description="refresh this long before expiry (default TOKEN_REFRESH_BUFFER)",
    )


class ExternalAuthUpdate(ExternalAuthFields):
    client_secret: WireSecret | None = Field(default=None, max_length=500, description="leave out to keep it")


class ExternalAuthSettings(ExternalAuthFields):
    client_secret_set: bool = False
    circuit_open: bool = False


class ExternalAccessToken(Contract):
    """The external server's access token of the caller's session (refreshed first if it is about to expire)."""

    access_token: str
    expires_at: datetime


EXTERNAL_GET = Rpc(
    "auth.external.get",
    Empty,
    ExternalAuthSettings,
    access="admin",
    summary="Admin: the external auth server",
)
EXTERNAL_UPDATE = Rpc(
    "auth.external.update",
    ExternalAuthUpdate,
    ExternalAuthSettings,
    access="admin",
    summary="Admin: let an external auth server check passwords (OAuth2 password grant)",
)
EXTERNAL_TOKEN = Rpc(
    "auth.external.token",
    Empty,
    ExternalAccessToken,
    access="user",
    effect="account",
    summary="The external server's access token of my session",
)


# What a session that must enrol a second factor may still do: read its account, set up TOTP or a passkey,
# see and end its sessions, change its password, list or revoke (never create) access tokens, sign out;
# and an administrator may still read and loosen the policy, so that setting it never locks them out.
ENROLMENT_SUBJECTS: frozenset[str] = frozenset(
    rpc.subject
    for rpc in (
        ME,
        LOGOUT,
        LOGOUT_ALL,
        SESSIONS,
        END_SESSION,
        CHANGE_PASSWORD,
        RESEND_VERIFICATION,
        SECOND_FACTOR_STATUS,
        TOTP_START,
        TOTP_CONFIRM,
        PASSKEY_REGISTER_OPTIONS,
        PASSKEY_REGISTER,
        PASSKEY_LIST,
        PASSKEY_RENAME,
        PAT_LIST,
        PAT_REVOKE,
        POLICY_GET,
        POLICY_UPDATE,
    )
)
