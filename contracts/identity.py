"""Auth service subjects for the second part of identity: second factors (TOTP with recovery codes,
passkeys), the two-step sign-in, the security policy, personal access tokens, single sign-on and the
external authentication server. The account, session and recovery subjects are in `auth.py`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .auth import Ack, TokenPair
from .base import Contract, Empty, Rpc, WireSecret

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
    code: str = Field(min_length=6, max_length=24, description="a TOTP code or a recovery code")


class SecondFactorStatus(Contract):
    totp: bool
    recovery_codes_left: int
    passkeys: int
    required: bool = Field(description="the policy asks this account for a second factor")


class SecondStep(Contract):
    """The second step of a sign-in: the `step_token` from the login's 401 and a proof of one method."""

    step_token: WireSecret = Field(min_length=1, max_length=200)
    method: SecondFactorMethod
    code: str | None = Field(default=None, max_length=24, description="TOTP code or recovery code")
    credential: dict[str, Any] | None = Field(
        default=None, description="passkey: the PublicKeyCredential from navigator.credentials.get()"
    )


class SecurityPolicy(Contract):
    second_factor: SecondFactorPolicy = Field(
        default="optional", description="who must have a second factor: nobody, administrators, everyone"
    )


TOTP_START = Rpc(
    "auth.totp.start",
    Empty,
    TotpEnrolment,
    access="user",
    summary="Begin TOTP enrolment: a new secret and its QR code (confirm with a code)",
)
TOTP_CONFIRM = Rpc(
    "auth.totp.confirm",
    TotpCode,
    RecoveryCodes,
    access="user",
    summary="Confirm TOTP with a first code; answers the recovery codes, once",
)
TOTP_DISABLE = Rpc(
    "auth.totp.disable",
    ConfirmedChange,
    Ack,
    access="user",
    summary="Turn TOTP off (password and a code needed)",
)
RECOVERY_REGENERATE = Rpc(
    "auth.recovery.regenerate",
    ConfirmedChange,
    RecoveryCodes,
    access="user",
    summary="New recovery codes (password and a code needed); the old ones stop working",
)
SECOND_FACTOR_STATUS = Rpc(
    "auth.second_factor.status",
    Empty,
    SecondFactorStatus,
    access="user",
    summary="My second factors and whether the policy requires one",
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
