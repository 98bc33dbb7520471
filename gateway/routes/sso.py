"""Single sign-on and external-authentication routes. A browser follows `GET /auth/sso/{provider}/start` to the provider and comes back
to `GET /auth/sso/{provider}/callback`, which sets the session cookies and sends it to the app, or back to
the sign-in page with `?sso_error=` saying what failed. `POST /auth/sso/finish` is the same last step for
clients that handle the redirect themselves. Administrators manage providers under /admin/sso-providers."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from contracts import AtriumError, Empty
from contracts.auth import Ack, TokenPair
from contracts.identity import (
    EXTERNAL_GET,
    EXTERNAL_TOKEN,
    EXTERNAL_UPDATE,
    SSO_BUTTONS,
    SSO_DELETE,
    SSO_FINISH,
    SSO_LIST,
    SSO_START,
    SSO_UPSERT,
    ExternalAccessToken,
    ExternalAuthSettings,
    ExternalAuthUpdate,
    SsoButtons,
    SsoFinish,
    SsoProviderAdmin,
    SsoProviderFields,
    SsoProviderList,
    SsoRedirect,
    SsoStart,
)

from ..bus import Call
from ..transport import Token, set_session_cookies
from .auth import with_cookies

router = APIRouter(tags=["auth"])

SIGN_IN_PAGE = "/sign-in"


def _back_to_sign_in(message: str) -> RedirectResponse:
    return RedirectResponse(f"{SIGN_IN_PAGE}?{urlencode({'sso_error': message[:300]})}", status_code=303)


@router.get("/auth/sso/buttons", response_model=SsoButtons, summary='The "Sign in with …" buttons')
async def buttons(call: Call) -> SsoButtons:
    return await call(SSO_BUTTONS, Empty())


@router.post(
    "/auth/sso/start", response_model=SsoRedirect, summary="Begin a single sign-on: the provider's URL"
)
async def start_json(body: SsoStart, call: Call) -> SsoRedirect:
    return await call(SSO_START, body)


@router.get(
    "/auth/sso/{provider}/start",
    status_code=303,
    response_class=RedirectResponse,
    summary="Begin a single sign-on in the browser: redirects to the provider",
)
async def start(provider: str, call: Call, remember_me: bool = False) -> RedirectResponse:
    try:
        found: SsoRedirect = await call(SSO_START, {"provider": provider, "remember_me": remember_me})
    except AtriumError as exc:
        return _back_to_sign_in(exc.message)
    return RedirectResponse(found.authorization_url, status_code=303)


@router.get(
    "/auth/sso/{provider}/callback",
    status_code=303,
    response_class=RedirectResponse,
    summary="Where the provider sends the browser back: signs in and redirects to the app",
)
async def callback(
    provider: str,
    call: Call,
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> RedirectResponse:
    if error or not code or not state:
        why = error_description or error or "the provider sent no code"
        return _back_to_sign_in(f"The provider did not sign you in ({why}).")
    try:
        pair: TokenPair = await call(SSO_FINISH, {"provider": provider, "state": state, "code": code})
    except AtriumError as exc:
        return _back_to_sign_in(exc.message)
    response = RedirectResponse("/", status_code=303)
    set_session_cookies(
        request,
        response,
        pair.access_token,
        pair.expires_in,
        pair.refresh_token,
        pair.refresh_expires_in,
        new_csrf=True,
    )
    return response


@router.post(
    "/auth/sso/finish", response_model=TokenPair, summary="Finish a single sign-on with the provider's code"
)
async def finish(body: SsoFinish, call: Call, request: Request, response: Response) -> TokenPair:
    return with_cookies(request, response, await call(SSO_FINISH, body), sign_in=True)


@router.get(
    "/admin/sso-providers", response_model=SsoProviderList, tags=["admin"], summary="Single sign-on providers"
)
async def list_providers(call: Call, token: Token) -> SsoProviderList:
    return await call(SSO_LIST, Empty(), token=token)


class SsoProviderBody(SsoProviderFields):
    client_secret: str | None = None


@router.put(
    "/admin/sso-providers/{provider_id}",
    response_model=SsoProviderAdmin,
    tags=["admin"],
    summary="Add or change an OpenID Connect provider (its discovery document is checked)",
)
async def upsert_provider(
    provider_id: str, body: SsoProviderBody, call: Call, token: Token
) -> SsoProviderAdmin:
    return await call(SSO_UPSERT, {**body.model_dump(exclude_unset=True), "id": provider_id}, token=token)


@router.delete(
    "/admin/sso-providers/{provider_id}", response_model=Ack, tags=["admin"], summary="Remove a provider"
)
async def delete_provider(provider_id: str, call: Call, token: Token) -> Ack:
    return await call(SSO_DELETE, {"id": provider_id}, token=token)


@router.get(
    "/admin/external-auth",
    response_model=ExternalAuthSettings,
    tags=["admin"],
    summary="The external authentication server",
)
async def get_external(call: Call, token: Token) -> ExternalAuthSettings:
    return await call(EXTERNAL_GET, Empty(), token=token)


@router.put(
    "/admin/external-auth",
    response_model=ExternalAuthSettings,
    tags=["admin"],
    summary="Let an external OAuth2 server check passwords (local administrators still sign in locally)",
)
async def update_external(body: ExternalAuthUpdate, call: Call, token: Token) -> ExternalAuthSettings:
    return await call(EXTERNAL_UPDATE, body, token=token)


@router.get(
    "/auth/external/token",
    response_model=ExternalAccessToken,
    summary="The external server's access token of my session (refreshed when about to expire)",
)
async def external_token(call: Call, token: Token) -> ExternalAccessToken:
    return await call(EXTERNAL_TOKEN, Empty(), token=token)
