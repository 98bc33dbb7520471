"""What a signed-in person manages about their own sign-in — the username, second factors (TOTP, recovery
codes, passkeys), personal access tokens — and the second step of a sign-in. Thin routes over `auth.*`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, SecretStr

from contracts import Empty
from contracts.auth import SET_USERNAME, Ack, SetUsername, TokenPair, UserPublic
from contracts.identity import (
    PASSKEY_LIST,
    PASSKEY_LOGIN,
    PASSKEY_LOGIN_OPTIONS,
    PASSKEY_REGISTER,
    PASSKEY_REGISTER_OPTIONS,
    PASSKEY_REMOVE,
    PASSKEY_RENAME,
    PAT_CREATE,
    PAT_LIST,
    PAT_REVOKE,
    POLICY_GET,
    POLICY_UPDATE,
    RECOVERY_REGENERATE,
    SECOND_FACTOR_STATUS,
    SECOND_STEP,
    TOTP_CONFIRM,
    TOTP_DISABLE,
    TOTP_START,
    ConfirmedChange,
    PasskeyCeremony,
    PasskeyInfo,
    PasskeyList,
    PasskeyLogin,
    PasskeyLoginStart,
    PasskeyRegister,
    PatCreate,
    PatCreated,
    PatList,
    PatRef,
    RecoveryCodes,
    SecondFactorStatus,
    SecondStep,
    SecurityPolicy,
    TotpCode,
    TotpEnrolment,
)

from ..bus import Call
from ..errors import errors
from ..transport import Token
from .auth import BrowserSession, with_cookies

router = APIRouter(tags=["auth"])


@router.put(
    "/auth/username",
    response_model=UserPublic,
    summary="Choose, change or remove my username",
    responses=errors(401, 403, 404, 409),
)
async def set_username(body: SetUsername, call: Call, token: Token) -> UserPublic:
    return await call(SET_USERNAME, body, token=token)


@router.post(
    "/auth/login/second-step",
    response_model=BrowserSession,
    summary="Finish a browser's sign-in with the step token of the 401 and a TOTP code, recovery code or "
    "passkey: session cookies (httpOnly), no tokens in the body",
    responses=errors(401, 429),
)
async def second_step(body: SecondStep, call: Call, request: Request, response: Response) -> BrowserSession:
    return with_cookies(request, response, await call(SECOND_STEP, body), sign_in=True)


@router.post(
    "/auth/login/second-step/tokens",
    response_model=TokenPair,
    summary="Finish an API client's sign-in (POST /auth/login's 401) with the step token and a TOTP or "
    "recovery code: the token pair, no cookies",
    responses=errors(401, 429),
)
async def second_step_tokens(body: SecondStep, call: Call) -> TokenPair:
    return await call(SECOND_STEP, body)


@router.get(
    "/auth/second-factor",
    response_model=SecondFactorStatus,
    summary="My second factors",
    responses=errors(401, 404),
)
async def second_factor_status(call: Call, token: Token) -> SecondFactorStatus:
    return await call(SECOND_FACTOR_STATUS, Empty(), token=token)


@router.post(
    "/auth/totp/start",
    response_model=TotpEnrolment,
    summary="Begin setting up an authenticator app",
    responses=errors(401, 403, 404, 409),
)
async def totp_start(call: Call, token: Token) -> TotpEnrolment:
    return await call(TOTP_START, Empty(), token=token)


@router.post(
    "/auth/totp/confirm",
    response_model=RecoveryCodes,
    summary="Confirm the authenticator app with a first code; answers the recovery codes, once",
    responses=errors(401, 403, 404, 409, 429),
)
async def totp_confirm(body: TotpCode, call: Call, token: Token) -> RecoveryCodes:
    return await call(TOTP_CONFIRM, body, token=token)


@router.post(
    "/auth/totp/disable",
    response_model=Ack,
    summary="Turn the authenticator app off",
    responses=errors(401, 403, 404, 409, 429),
)
async def totp_disable(body: ConfirmedChange, call: Call, token: Token) -> Ack:
    return await call(TOTP_DISABLE, body, token=token)


@router.post(
    "/auth/recovery-codes",
    response_model=RecoveryCodes,
    summary="New recovery codes (the old ones stop working); shown once",
    responses=errors(401, 403, 404, 409, 429),
)
async def regenerate_recovery_codes(body: ConfirmedChange, call: Call, token: Token) -> RecoveryCodes:
    return await call(RECOVERY_REGENERATE, body, token=token)


@router.get(
    "/admin/security-policy",
    response_model=SecurityPolicy,
    tags=["admin"],
    summary="The sign-in policy",
    responses=errors(401, 403),
)
async def get_policy(call: Call, token: Token) -> SecurityPolicy:
    return await call(POLICY_GET, Empty(), token=token)


@router.put(
    "/admin/security-policy",
    response_model=SecurityPolicy,
    tags=["admin"],
    summary="Require a second factor of administrators or of everyone",
    responses=errors(401, 403),
)
async def update_policy(body: SecurityPolicy, call: Call, token: Token) -> SecurityPolicy:
    return await call(POLICY_UPDATE, body, token=token)


@router.get(
    "/auth/tokens", response_model=PatList, summary="My personal access tokens", responses=errors(401, 403)
)
async def list_tokens(call: Call, token: Token) -> PatList:
    return await call(PAT_LIST, Empty(), token=token)


@router.post(
    "/auth/tokens",
    status_code=201,
    response_model=PatCreated,
    summary="Create a personal access token (the token is in this answer only)",
    responses=errors(401, 403, 404),
)
async def create_token(body: PatCreate, call: Call, token: Token) -> PatCreated:
    return await call(PAT_CREATE, body, token=token)


@router.delete(
    "/auth/tokens/{token_id}",
    response_model=Ack,
    summary="Revoke one of my access tokens",
    responses=errors(401, 403, 404),
)
async def revoke_token(token_id: UUID, call: Call, token: Token) -> Ack:
    return await call(PAT_REVOKE, PatRef(token_id=token_id), token=token)


class PasskeyName(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class PasswordConfirmation(BaseModel):
    password: SecretStr = Field(min_length=1, max_length=1024)


@router.get("/auth/passkeys", response_model=PasskeyList, summary="My passkeys", responses=errors(401, 403))
async def list_passkeys(call: Call, token: Token) -> PasskeyList:
    return await call(PASSKEY_LIST, Empty(), token=token)


@router.post(
    "/auth/passkeys/options",
    response_model=PasskeyCeremony,
    summary="Begin adding a passkey: options for navigator.credentials.create()",
    responses=errors(401, 403, 404),
)
async def passkey_register_options(call: Call, token: Token) -> PasskeyCeremony:
    return await call(PASSKEY_REGISTER_OPTIONS, Empty(), token=token)


@router.post(
    "/auth/passkeys",
    status_code=201,
    response_model=PasskeyInfo,
    summary="Add a passkey",
    responses=errors(401, 403, 409),
)
async def passkey_register(body: PasskeyRegister, call: Call, token: Token) -> PasskeyInfo:
    return await call(PASSKEY_REGISTER, body, token=token)


@router.patch(
    "/auth/passkeys/{passkey_id}",
    response_model=PasskeyInfo,
    summary="Rename a passkey",
    responses=errors(401, 403, 404),
)
async def passkey_rename(passkey_id: UUID, body: PasskeyName, call: Call, token: Token) -> PasskeyInfo:
    return await call(PASSKEY_RENAME, {"passkey_id": passkey_id, "name": body.name}, token=token)


@router.post(
    "/auth/passkeys/{passkey_id}/remove",
    response_model=Ack,
    summary="Remove a passkey (password needed)",
    responses=errors(401, 403, 404, 429),
)
async def passkey_remove(passkey_id: UUID, body: PasswordConfirmation, call: Call, token: Token) -> Ack:
    payload = {"passkey_id": passkey_id, "password": body.password.get_secret_value()}
    return await call(PASSKEY_REMOVE, payload, token=token)


@router.post(
    "/auth/login/passkey/options",
    response_model=PasskeyCeremony,
    summary="Begin a sign-in with a passkey: options for navigator.credentials.get()",
    responses=errors(429),
)
async def passkey_login_options(body: PasskeyLoginStart, call: Call) -> PasskeyCeremony:
    return await call(PASSKEY_LOGIN_OPTIONS, body)


@router.post(
    "/auth/login/passkey",
    response_model=BrowserSession,
    summary="Sign in with a passkey: session cookies (httpOnly), no tokens in the body",
    responses=errors(401, 429),
)
async def passkey_login(
    body: PasskeyLogin, call: Call, request: Request, response: Response
) -> BrowserSession:
    return with_cookies(request, response, await call(PASSKEY_LOGIN, body), sign_in=True)
