"""`/api/v1/auth/*`: thin routes over `auth.*` subjects, plus `/.well-known/jwks.json`.

Browsers sign in with `POST /auth/session` and refresh with the refresh cookie: the tokens travel only in
httpOnly cookies and never in a body a page's script could read (issue 13 item 12); the sign-in's second
step, passkey sign-in and single sign-on (routes/account.py, routes/sso.py) answer the same way. API clients sign in
with `POST /auth/login` (or the OAuth2 form at `/auth/token`) and refresh with the token in the body: they
get the JSON token pair and no cookies.
Login, register, refresh and the recovery routes are not cookie-authenticated, so they need no
CSRF token; every other unsafe route authenticated by the cookie does (see `transport`).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import AtriumError, Empty, ErrorCode, Unauthenticated
from contracts.auth import (
    CHANGE_EMAIL,
    CHANGE_PASSWORD,
    END_SESSION,
    FORGOT_PASSWORD,
    JWKS,
    LOGIN,
    LOGOUT,
    LOGOUT_ALL,
    ME,
    REFRESH,
    REGISTER,
    RESEND_VERIFICATION,
    RESET_PASSWORD,
    SESSIONS,
    VERIFY_EMAIL,
    Ack,
    ChangeEmail,
    ChangePassword,
    EndSession,
    ForgotPassword,
    Jwks,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterUser,
    ResetPassword,
    SessionList,
    TokenPair,
    UserPublic,
    VerifyEmail,
)

from ..bus import Call
from ..errors import error_response, errors
from ..transport import OptionalToken, Token, clear_session_cookies, cookie_names, set_session_cookies

router = APIRouter(prefix="/auth", tags=["auth"])
root_router = APIRouter(tags=["auth"])


class PasswordGrant(BaseModel):
    """The OAuth2 password grant, as the form Swagger's "Authorize" sends: `username` is the email or username."""

    grant_type: str | None = None
    username: str
    password: str
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class BrowserSession(BaseModel):
    """A browser's sign-in or refresh: the tokens are in the session cookies only."""

    user: UserPublic
    expires_in: int
    refresh_expires_in: int


def with_cookies(
    request: Request, response: Response, pair: TokenPair, *, sign_in: bool = False
) -> BrowserSession:
    set_session_cookies(
        request,
        response,
        pair.access_token,
        pair.expires_in,
        pair.refresh_token,
        pair.refresh_expires_in,
        new_csrf=sign_in,
    )
    return BrowserSession(
        user=pair.user, expires_in=pair.expires_in, refresh_expires_in=pair.refresh_expires_in
    )


def _signed_out(request: Request, exc: AtriumError) -> JSONResponse:
    """An auth failure that also drops the browser's now-useless session cookies."""
    resp = error_response(request, exc.code, exc.message, exc.details)
    clear_session_cookies(request, resp)
    return resp


@router.post(
    "/register",
    status_code=201,
    response_model=UserPublic,
    summary="Create an account",
    responses=errors(409, 429),
)
async def register(body: RegisterUser, call: Call) -> UserPublic:
    return await call(REGISTER, body)


@router.post(
    "/login",
    response_model=TokenPair,
    summary="Sign in with email and password (JSON): the token pair, for API clients",
    responses=errors(401, 429),
)
async def login(body: LoginRequest, call: Call) -> TokenPair:
    return await call(LOGIN, body)


@router.post(
    "/session",
    response_model=BrowserSession,
    summary="Sign in from a browser: session cookies (httpOnly), no tokens in the body",
    responses=errors(401, 429),
)
async def browser_login(
    body: LoginRequest, call: Call, request: Request, response: Response
) -> BrowserSession:
    return with_cookies(request, response, await call(LOGIN, body), sign_in=True)


@router.post(
    "/token",
    response_model=TokenPair,
    summary="OAuth2 password flow (form: username, password)",
    responses=errors(401, 429),
)
async def token(form: Annotated[PasswordGrant, Form()], call: Call) -> TokenPair:
    # A dict, not the model: a malformed username becomes an `invalid` error like any other body.
    return await call(LOGIN, {"email": form.username, "password": form.password})


@router.post(
    "/refresh",
    response_model=TokenPair | BrowserSession,
    summary='New tokens: from the refresh cookie into the cookies, or from {"refresh_token": …} as JSON',
    responses=errors(401, 429),
)
async def refresh(
    call: Call, request: Request, response: Response, body: RefreshRequest | None = None
) -> TokenPair | BrowserSession | JSONResponse:
    from_cookie = body is None
    raw = (
        request.cookies.get(cookie_names(request).refresh)
        if body is None
        else body.refresh_token.get_secret_value()
    )
    if not raw:
        raise Unauthenticated('Send the refresh token: the refresh cookie or {"refresh_token": …}.')
    try:
        pair: TokenPair = await call(REFRESH, {"refresh_token": raw})
    except AtriumError as exc:
        if from_cookie and exc.code == ErrorCode.UNAUTHENTICATED:
            return _signed_out(request, exc)
        raise
    return with_cookies(request, response, pair) if from_cookie else pair


@router.post("/logout", response_model=Ack, summary="End this session", responses=errors(401, 403))
async def logout(
    call: Call, request: Request, response: Response, token: OptionalToken, body: LogoutRequest | None = None
) -> Ack:
    refresh_token = body.refresh_token.get_secret_value() if body and body.refresh_token else None
    refresh_token = refresh_token or request.cookies.get(cookie_names(request).refresh)
    ack: Ack = await call(LOGOUT, {"refresh_token": refresh_token}, token=token)
    clear_session_cookies(request, response)
    return ack


@router.post(
    "/logout-all",
    response_model=Ack,
    summary="End every session of this account",
    responses=errors(401, 403, 404),
)
async def logout_all(call: Call, request: Request, response: Response, token: Token) -> Ack:
    ack: Ack = await call(LOGOUT_ALL, Empty(), token=token)
    clear_session_cookies(request, response)
    return ack


@router.get("/me", response_model=UserPublic, summary="The signed-in user", responses=errors(401, 404))
async def me(call: Call, token: Token) -> UserPublic:
    return await call(ME, Empty(), token=token)


@router.get("/sessions", response_model=SessionList, summary="My live sessions", responses=errors(401))
async def sessions(call: Call, token: Token) -> SessionList:
    return await call(SESSIONS, Empty(), token=token)


@router.delete(
    "/sessions/{session_id}",
    response_model=Ack,
    summary="End one of my sessions",
    responses=errors(401, 403, 404),
)
async def end_session(session_id: UUID, call: Call, token: Token) -> Ack:
    return await call(END_SESSION, EndSession(session_id=session_id), token=token)


@router.post(
    "/password/change",
    response_model=Ack,
    summary="Change my password; my other sessions end",
    responses=errors(401, 403, 404, 429),
)
async def change_password(body: ChangePassword, call: Call, token: Token) -> Ack:
    return await call(CHANGE_PASSWORD, body, token=token)


@router.post(
    "/password/forgot",
    response_model=Ack,
    summary="Mail a reset link (same answer for any address)",
    responses=errors(429),
)
async def forgot_password(body: ForgotPassword, call: Call) -> Ack:
    return await call(FORGOT_PASSWORD, body)


@router.post(
    "/password/reset",
    response_model=Ack,
    summary="Set a new password with a reset token",
    responses=errors(429),
)
async def reset_password(body: ResetPassword, call: Call, request: Request, response: Response) -> Ack:
    ack: Ack = await call(RESET_PASSWORD, body)
    clear_session_cookies(request, response)
    return ack


@router.post(
    "/email/verify", response_model=UserPublic, summary="Confirm an email address", responses=errors(409, 429)
)
async def verify_email(body: VerifyEmail, call: Call) -> UserPublic:
    return await call(VERIFY_EMAIL, body)


@router.post(
    "/email/verify/resend",
    response_model=Ack,
    summary="Mail me a new confirmation link",
    responses=errors(401, 403, 404, 429),
)
async def resend_verification(call: Call, token: Token) -> Ack:
    return await call(RESEND_VERIFICATION, Empty(), token=token)


@router.post(
    "/email/change",
    response_model=Ack,
    summary="Change my email (confirmed by a link to the new one)",
    responses=errors(401, 403, 404, 409, 429),
)
async def change_email(body: ChangeEmail, call: Call, token: Token) -> Ack:
    return await call(CHANGE_EMAIL, body, token=token)


@root_router.get("/.well-known/jwks.json", response_model=Jwks, summary="Public keys of access tokens")
async def jwks(call: Call, response: Response) -> Jwks:
    response.headers["Cache-Control"] = "public, max-age=300"
    return await call(JWKS, Empty())
