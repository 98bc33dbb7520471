"""Single sign-on and external-authentication routes. The web app sends the browser to the URL of
`POST /auth/sso/start`; the provider sends it back to the app's `/sso/{provider}/callback` page, which
finishes with `POST /auth/sso/finish` (the session cookies are set there). Administrators manage providers
under /admin/sso-providers and the external auth server under /admin/external-auth."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from contracts import Empty
from contracts.auth import Ack
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
from ..errors import errors
from ..transport import Token
from .auth import BrowserSession, with_cookies

router = APIRouter(tags=["auth"])


@router.get(
    "/auth/sso/buttons", response_model=SsoButtons, summary='The "Sign in with …" buttons', responses=errors()
)
async def buttons(call: Call) -> SsoButtons:
    return await call(SSO_BUTTONS, Empty())


@router.post(
    "/auth/sso/start",
    response_model=SsoRedirect,
    summary="Begin a single sign-on: the provider's authorization URL to send the browser to",
    responses=errors(404, 429),
)
async def start(body: SsoStart, call: Call) -> SsoRedirect:
    return await call(SSO_START, body)


@router.post(
    "/auth/sso/finish",
    response_model=BrowserSession,
    summary="Finish a single sign-on with the provider's code and state: session cookies (httpOnly), "
    "no tokens in the body",
    responses=errors(401, 403, 404, 429),
)
async def finish(body: SsoFinish, call: Call, request: Request, response: Response) -> BrowserSession:
    return with_cookies(request, response, await call(SSO_FINISH, body), sign_in=True)


@router.get(
    "/admin/sso-providers",
    response_model=SsoProviderList,
    tags=["admin"],
    summary="Single sign-on providers",
    responses=errors(401, 403),
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
    responses=errors(401, 403, 404),
)
async def upsert_provider(
    provider_id: str, body: SsoProviderBody, call: Call, token: Token
) -> SsoProviderAdmin:
    return await call(SSO_UPSERT, {**body.model_dump(exclude_unset=True), "id": provider_id}, token=token)


@router.delete(
    "/admin/sso-providers/{provider_id}",
    response_model=Ack,
    tags=["admin"],
    summary="Remove a provider",
    responses=errors(401, 403, 404),
)
async def delete_provider(provider_id: str, call: Call, token: Token) -> Ack:
    return await call(SSO_DELETE, {"id": provider_id}, token=token)


@router.get(
    "/admin/external-auth",
    response_model=ExternalAuthSettings,
    tags=["admin"],
    summary="The external authentication server",
    responses=errors(401, 403),
)
async def get_external(call: Call, token: Token) -> ExternalAuthSettings:
    return await call(EXTERNAL_GET, Empty(), token=token)


@router.put(
    "/admin/external-auth",
    response_model=ExternalAuthSettings,
    tags=["admin"],
    summary="Let an external OAuth2 server check passwords (local administrators still sign in locally)",
    responses=errors(401, 403),
)
async def update_external(body: ExternalAuthUpdate, call: Call, token: Token) -> ExternalAuthSettings:
    return await call(EXTERNAL_UPDATE, body, token=token)


@router.get(
    "/auth/external/token",
    response_model=ExternalAccessToken,
    summary="The external server's access token of my session (refreshed when about to expire)",
    responses=errors(401, 404),
)
async def external_token(call: Call, token: Token) -> ExternalAccessToken:
    return await call(EXTERNAL_TOKEN, Empty(), token=token)
