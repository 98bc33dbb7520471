"""Single sign-on against a real OpenID provider (node oidc-provider, started by this module): the code
flow with PKCE, state and nonce; accounts linked by verified email or created just in time; a groups claim
mapped to Atrium groups; and what must fail: a wrong nonce, a replayed code or state, an expired ID token,
a provider that is down."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from services.auth.tables import sso_providers
from services.kit.db import Database
from tests.conftest import AppUser, Stack, register_and_login, unique_email
from tests.integration.test_auth_support import browser_session
from tests.oidc.harness import CLIENT_SECRET, OidcProvider, provider_settings

pytestmark = pytest.mark.usefixtures("stack")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def idp(stack: Stack) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(public_url=os.environ["ATRIUM_PUBLIC_URL"])
    await provider.start()
    yield provider
    await provider.stop()


async def configure(
    http: httpx.AsyncClient, admin: AppUser, idp: OidcProvider, provider_id: str, **changes: Any
) -> dict[str, Any]:
    r = await http.put(
        f"/admin/sso-providers/{provider_id}",
        json=provider_settings(idp, provider_id, **changes),
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def start(http: httpx.AsyncClient, provider_id: str, **extra: Any) -> str:
    r = await http.post("/auth/sso/start", json={"provider": provider_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()["authorization_url"]  # type: ignore[no-any-return]


async def finish(http: httpx.AsyncClient, provider_id: str, back: dict[str, str]) -> httpx.Response:
    r = await http.post(
        "/auth/sso/finish", json={"provider": provider_id, "state": back["state"], "code": back["code"]}
    )
    if r.status_code == 200:
        browser_session(r)  # cookies only, no token in the body
    return r


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_configuration_keeps_the_secret_encrypted_and_shows_buttons(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider, auth_db: Database
) -> None:
    saved = await configure(http, new_admin, idp, "testidp", label="Test IdP")
    assert saved["client_secret_set"] is True and "client_secret" not in saved
    assert saved["redirect_uri"] == f"{os.environ['ATRIUM_PUBLIC_URL']}/sso/testidp/callback"
    assert CLIENT_SECRET not in str(
        (await http.get("/admin/sso-providers", headers=new_admin.headers)).json()
    )
    async with auth_db.session() as s:
        stored = (
            await s.execute(select(sso_providers.c.client_secret_enc).where(sso_providers.c.id == "testidp"))
        ).scalar_one()
    assert stored and CLIENT_SECRET not in stored
    http.cookies.clear()
    buttons = (await http.get("/auth/sso/buttons")).json()["items"]
    assert {"id": "testidp", "label": "Test IdP"} in buttons
    user = await register_and_login(http)
    r = await http.put("/admin/sso-providers/x", json=provider_settings(idp, "x"), headers=user.headers)
    assert r.status_code == 403
    r = await http.put(
        "/admin/sso-providers/bad",
        json=provider_settings(idp, "bad", issuer="http://127.0.0.1:9/nothing"),
        headers=new_admin.headers,
    )
    assert r.status_code == 503 and "identity provider" in r.json()["error"]["message"]


async def test_an_existing_account_is_linked_by_its_verified_email(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp")
    user = await register_and_login(http)
    account = await idp.add_account(user.email, name="Ada Lovelace")
    url = await start(http, "testidp", remember_me=True)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0] and query["nonce"][0]
    back = await idp.sign_in(url, account)
    r = await finish(http, "testidp", back)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == user.id and r.json()["refresh_expires_in"] > 7 * 24 * 3600
    me = await http.get("/auth/me", headers=browser_session(r))
    assert me.status_code == 200 and me.json()["id"] == user.id
    # the state is single use
    again = await finish(http, "testidp", back)
    assert again.status_code == 401 and again.json()["error"]["details"] == {"reason": "state"}
    # the next time the provider's subject alone finds the account
    back = await idp.sign_in(await start(http, "testidp"), account)
    assert (await finish(http, "testidp", back)).json()["user"]["id"] == user.id


async def test_an_unverified_email_links_nothing_and_without_jit_there_is_no_account(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp-nolink", create_users=False)
    user = await register_and_login(http)
    account = await idp.add_account(user.email, email_verified=False)
    back = await idp.sign_in(await start(http, "testidp-nolink"), account)
    r = await finish(http, "testidp-nolink", back)
    assert r.status_code == 403 and r.json()["error"]["details"] == {"reason": "no_account"}
    stranger = await idp.add_account(unique_email("stranger"))
    back = await idp.sign_in(await start(http, "testidp-nolink"), stranger)
    assert (await finish(http, "testidp-nolink", back)).status_code == 403


async def test_accounts_are_created_just_in_time_when_allowed(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp-jit", create_users=True)
    email = unique_email("jit")
    account = await idp.add_account(email, name="Grace Hopper")
    back = await idp.sign_in(await start(http, "testidp-jit"), account)
    r = await finish(http, "testidp-jit", back)
    assert r.status_code == 200, r.text
    me = r.json()["user"]
    assert me["email"] == email and me["email_verified"] is True and me["full_name"] == "Grace Hopper"
    # the new account has no usable password
    r = await http.post("/auth/login", json={"email": email, "password": account["password"]})
    assert r.status_code == 401


async def test_a_groups_claim_sets_the_mapped_group_memberships(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    staff = (
        await http.post(
            "/admin/groups", json={"name": f"staff-{uuid.uuid4().hex[:6]}"}, headers=new_admin.headers
        )
    ).json()
    ops = (
        await http.post(
            "/admin/groups", json={"name": f"ops-{uuid.uuid4().hex[:6]}"}, headers=new_admin.headers
        )
    ).json()
    await configure(
        http,
        new_admin,
        idp,
        "testidp-groups",
        create_users=True,
        groups_claim="groups",
        group_map={"staff": staff["id"], "ops": ops["id"]},
    )
    account = await idp.add_account(unique_email("grouped"), groups=["staff", "unmapped"])
    back = await idp.sign_in(await start(http, "testidp-groups"), account)
    r = await finish(http, "testidp-groups", back)
    assert r.status_code == 200, r.text
    user_id = r.json()["user"]["id"]

    async def members(group: dict[str, Any]) -> list[str]:
        found = (await http.get("/admin/groups", headers=new_admin.headers)).json()["groups"]
        return next(g["member_ids"] for g in found if g["id"] == group["id"])

    for _ in range(100):
        if user_id in await members(staff):
            break
        await asyncio.sleep(0.1)
    assert user_id in await members(staff) and user_id not in await members(ops)


async def test_a_wrong_nonce_is_refused(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp")
    user = await register_and_login(http)
    account = await idp.add_account(user.email)
    url = with_query(await start(http, "testidp"), nonce="a-nonce-of-another-sign-in")
    r = await finish(http, "testidp", await idp.sign_in(url, account))
    assert r.status_code == 401 and r.json()["error"]["details"] == {"reason": "nonce_mismatch"}


async def test_a_replayed_code_is_refused(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp")
    user = await register_and_login(http)
    account = await idp.add_account(user.email)
    first = await idp.sign_in(await start(http, "testidp"), account)
    assert (await finish(http, "testidp", first)).status_code == 200
    fresh_state = parse_qs(urlsplit(await start(http, "testidp")).query)["state"][0]
    r = await finish(http, "testidp", {"state": fresh_state, "code": first["code"]})
    assert r.status_code == 401 and r.json()["error"]["details"] == {"reason": "code_refused"}


async def test_an_expired_id_token_is_refused(
    http: httpx.AsyncClient, new_admin: AppUser, idp: OidcProvider
) -> None:
    await configure(http, new_admin, idp, "testidp")
    user = await register_and_login(http)
    account = await idp.add_account(user.email)
    back = await idp.sign_in(await start(http, "testidp"), account)
    await idp.control(
        clockOffsetS=-3600
    )  # the provider's clock runs an hour late: its ID token is long expired
    try:
        r = await finish(http, "testidp", back)
    finally:
        await idp.control(clockOffsetS=0)
    assert r.status_code == 401 and r.json()["error"]["details"] == {"reason": "id_token_expired"}


async def test_a_provider_that_is_down_gives_a_clear_error(
    http: httpx.AsyncClient, new_admin: AppUser, stack: Stack
) -> None:
    down = OidcProvider(public_url=os.environ["ATRIUM_PUBLIC_URL"])
    await down.start()
    await configure(http, new_admin, down, "testidp-browser")
    user = await register_and_login(http)
    account = await down.add_account(user.email)
    back = await down.sign_in(await start(http, "testidp-browser"), account)
    await down.stop()
    r = await finish(http, "testidp-browser", back)
    assert r.status_code == 503, r.text
    assert (
        "identity provider" in r.json()["error"]["message"]
        and "cannot be reached" in r.json()["error"]["message"]
    )
    # (a provider's refusal sent back to the browser: the web app's callback page, tests/e2e/test_security_page.py)
    # local accounts still sign in
    assert (
        await http.post("/auth/login", json={"email": user.email, "password": user.password})
    ).status_code == 200
