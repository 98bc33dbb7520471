"""How a caller proves who they are over HTTP: `Authorization: Bearer` or the access cookie.

Cookie-authenticated unsafe requests must carry the CSRF double-submit token
(`X-CSRF-Token` header equal to the `csrf` cookie); bearer requests need none.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer

from contracts import Forbidden, Unauthenticated

from .bus import get_call
from .pats import exchanger, is_personal_token
from .settings import GatewaySettings

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
AUTH_PATH = "/api/v1/auth"


class CookieNames:
    def __init__(self, secure: bool):
        # `__Host-` requires Secure and Path=/; the refresh cookie needs its own path, so it gets `__Secure-`.
        self.access = "__Host-atrium_access" if secure else "atrium_access"
        self.refresh = "__Secure-atrium_refresh" if secure else "atrium_refresh"
        self.csrf = "__Host-atrium_csrf" if secure else "atrium_csrf"


def cookie_names(request: Request) -> CookieNames:
    settings: GatewaySettings = request.app.state.settings
    return CookieNames(settings.secure_cookies)


def bearer_from_header(request: Request) -> str | None:
    raw = request.headers.get("authorization")
    if not raw:
        return None
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send the access token as 'Authorization: Bearer <token>'.")
    return token.strip()


def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    names = cookie_names(request)
    cookie = request.cookies.get(names.csrf, "")
    header = request.headers.get("x-csrf-token", "")
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        raise Forbidden(
            "Missing or wrong CSRF token: send the value of the csrf cookie in the X-CSRF-Token header."
        )


# Declares the bearer scheme in OpenAPI, so Swagger's "Authorize" signs in through POST /auth/token.
# It never refuses by itself (auto_error=False): `optional_token` decides.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{AUTH_PATH}/token", auto_error=False)


# The dependencies are `async`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request
# that cost the gateway about a quarter of its CPU; a personal access token is exchanged on the way.
async def optional_token(
    request: Request, _declared: Annotated[str | None, Depends(oauth2_scheme)] = None
) -> str | None:
    token = bearer_from_header(request)
    if token and is_personal_token(token):
        # A personal access token: the services verify the short-lived access token it is exchanged for.
        request.state.personal_token = token
        return await exchanger(request).access_token(await get_call(request), token)
    if token:
        return token
    cookie = request.cookies.get(cookie_names(request).access)
    if cookie:
        check_csrf(request)
        return cookie
    return None


async def required_token(token: Annotated[str | None, Depends(optional_token)]) -> str:
    if not token:
        raise Unauthenticated("Sign in first: send 'Authorization: Bearer <token>' or the session cookie.")
    return token


Token = Annotated[str, Depends(required_token)]
OptionalToken = Annotated[str | None, Depends(optional_token)]


def set_session_cookies(
    request: Request,
    response: Response,
    access: str,
    access_ttl: int,
    refresh: str | None = None,
    refresh_ttl: int | None = None,
    *,
    new_csrf: bool = False,
) -> str:
    """Set the session cookies; `new_csrf` (at sign-in) replaces any CSRF value planted before the session."""
    settings: GatewaySettings = request.app.state.settings
    names = cookie_names(request)
    secure = settings.secure_cookies
    response.set_cookie(
        names.access, access, max_age=access_ttl, httponly=True, secure=secure, samesite="lax", path="/"
    )
    if refresh is not None:
        response.set_cookie(
            names.refresh,
            refresh,
            max_age=refresh_ttl,
            httponly=True,
            secure=secure,
            samesite="lax",
            path=AUTH_PATH,
        )
    csrf = (None if new_csrf else request.cookies.get(names.csrf)) or secrets.token_urlsafe(32)
    # Readable by the page's script on purpose: that is the double-submit.
    response.set_cookie(
        names.csrf,
        csrf,
        max_age=refresh_ttl or access_ttl,
        httponly=False,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return csrf


def clear_session_cookies(request: Request, response: Response) -> None:
    names = cookie_names(request)
    settings: GatewaySettings = request.app.state.settings
    response.delete_cookie(names.access, path="/", secure=settings.secure_cookies, httponly=True)
    response.delete_cookie(names.refresh, path=AUTH_PATH, secure=settings.secure_cookies, httponly=True)
    response.delete_cookie(names.csrf, path="/", secure=settings.secure_cookies)
