"""Issue 13, item 12: a browser's tokens stay in httpOnly cookies.

A script injected into the page (XSS) can call the API with the browser's cookies but cannot read them:
it must not find the tokens in a JSON body either. The browser signs in with POST /auth/session and
refreshes from the cookie; neither answer carries a token. API clients (POST /auth/login, refresh with the
token in the body) get the pair and no cookies, so the two paths never mix.
"""

from __future__ import annotations

import httpx

from tests.conftest import PASSWORD, AppUser, Stack

TOKEN_KEYS = {"access_token", "refresh_token"}


def no_tokens_in(r: httpx.Response, *secrets: str) -> None:
    assert not TOKEN_KEYS & set(r.json()), r.text
    for secret in secrets:
        assert secret not in r.text


async def test_browser_sign_in_and_refresh_answer_without_tokens(stack: Stack, new_user: AppUser) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as browser:
        r = await browser.post("/auth/session", json={"email": new_user.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        access, refresh = browser.cookies["atrium_access"], browser.cookies["atrium_refresh"]
        no_tokens_in(r, access, refresh)
        assert r.json()["user"]["email"] == new_user.email and r.json()["expires_in"] > 0
        for cookie in r.headers.get_list("set-cookie"):
            if cookie.startswith(("atrium_access=", "atrium_refresh=")):
                assert "httponly" in cookie.lower()

        # The injected script's refresh: rotates the cookies, shows it nothing.
        r = await browser.post("/auth/refresh")
        assert r.status_code == 200, r.text
        assert browser.cookies["atrium_refresh"] != refresh
        no_tokens_in(r, browser.cookies["atrium_access"], browser.cookies["atrium_refresh"])
        assert (await browser.get("/auth/me")).status_code == 200  # the session itself works on

        # It cannot reach the refresh token through the API-client path either: that needs the token.
        r = await browser.post("/auth/refresh", json={})
        assert r.status_code == 422 and "atrium_refresh" in browser.cookies


async def test_api_clients_get_the_pair_and_no_cookies(stack: Stack, new_user: AppUser) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as api:
        r = await api.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
        assert r.status_code == 200 and TOKEN_KEYS <= set(r.json())
        assert not r.headers.get_list("set-cookie") and not api.cookies
        r = await api.post("/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
        assert r.status_code == 200 and TOKEN_KEYS <= set(r.json())
        assert not r.headers.get_list("set-cookie")
