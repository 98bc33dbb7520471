"""The Security page, the sign-in page's passkey, second-step and single sign-on paths, and the admin
security page, in Debian's chromium. Passkeys use chromium's own WebAuthn stack with the DevTools virtual
authenticator (CDP `WebAuthn.enable` + `WebAuthn.addVirtualAuthenticator`), on `http://localhost:<port>`
(WebAuthn refuses an IP address as the relying party)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from services.auth import totp
from tests.conftest import PASSWORD, Stack, create_admin, register_and_login
from tests.e2e.conftest import Browsing, screenshot
from tests.oidc.harness import OidcProvider, provider_settings

WELCOME = re.compile("^Welcome")


def public_url() -> str:
    return os.environ["ATRIUM_PUBLIC_URL"]


async def localhost_page(browsing: Browsing, locale: str = "en-US") -> Any:
    return await browsing.new_page(base_url=public_url(), locale=locale)


async def virtual_authenticator(page: Any) -> tuple[Any, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def password_sign_in(page: Any, login: str, password: str = PASSWORD) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Email or username").fill(login)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def sign_out(page: Any) -> None:
    await page.get_by_role("button", name="Account menu").click()
    await page.get_by_role("menuitem", name="Sign out").click()
    await page.get_by_role("button", name="Sign in", exact=True).wait_for()
    await page.goto("/sign-in")  # not back to the page signed out of (`next`): to the dashboard


async def fresh_user(stack: Stack) -> Any:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        return await register_and_login(http)


async def test_a_passkey_added_on_the_security_page_signs_in_without_a_password(
    stack: Stack, browsing: Browsing
) -> None:
    user = await fresh_user(stack)
    page = await localhost_page(browsing)
    cdp, authenticator = await virtual_authenticator(page)
    await password_sign_in(page, user.email)
    await page.get_by_role("heading", name=WELCOME).wait_for()
    await page.goto("/security")
    await page.get_by_label("Name of the new passkey").fill("Laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await page.get_by_label("Name of passkey Laptop").wait_for()
    stored = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1 and stored["credentials"][0]["isResidentCredential"] is True
    await screenshot(page, "security-passkey-added")
    await sign_out(page)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.get_by_role("heading", name=WELCOME).wait_for()
    assert (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"][0][
        "signCount"
    ] >= 1


async def test_an_authenticator_app_asks_for_a_code_at_sign_in(stack: Stack, browsing: Browsing) -> None:
    user = await fresh_user(stack)
    page = await localhost_page(browsing)
    page.errors.allow.append("status of 401")  # the password step answers 401 second_factor_required
    await password_sign_in(page, user.email)
    await page.get_by_role("heading", name=WELCOME).wait_for()
    await page.goto("/security")
    await page.get_by_role("button", name="Set up authenticator app").click()
    await page.get_by_role("img", name="QR code to scan with the authenticator app").wait_for()
    secret = (await page.get_by_test_id("totp-secret").inner_text()).strip()
    step = totp.current_step()
    await page.get_by_label("Code from the app").fill(totp.code_at(secret, step))
    await page.get_by_role("button", name="Confirm and turn on").click()
    codes = page.get_by_role("list", name="Your recovery codes")
    await codes.wait_for()
    assert len(await codes.get_by_role("listitem").all()) == 10
    async with page.expect_download() as download:
        await page.get_by_role("button", name="Download").click()
    saved = (await (await download.value).path()).read_text()
    assert (await codes.get_by_role("listitem").first.inner_text()) in saved
    await page.get_by_role("button", name="I have saved them").click()
    await page.get_by_text("10 unused recovery codes left.").wait_for()
    await sign_out(page)
    await password_sign_in(page, user.email)
    await page.get_by_role("heading", name="Confirm it's you", level=1).wait_for()
    await page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        totp.code_at(secret, step + 1)
    )
    await page.get_by_role("button", name="Verify").click()
    await page.get_by_role("heading", name=WELCOME).wait_for()


async def test_an_access_token_is_shown_once_works_and_is_revoked(stack: Stack, browsing: Browsing) -> None:
    user = await fresh_user(stack)
    page = await localhost_page(browsing)
    await password_sign_in(page, user.email)
    await page.get_by_role("heading", name=WELCOME).wait_for()
    await page.goto("/security")
    await page.get_by_label("Name", exact=True).fill("backup script")
    await page.get_by_role("button", name="Create token").click()
    token = (await page.get_by_test_id("new-token").inner_text()).strip()
    assert token.startswith("atp_")
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as http:
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/auth/me", headers=bearer)).json()["email"] == user.email
        table = page.get_by_role("table", name="Personal access tokens")
        await table.get_by_text("backup script").wait_for()
        await page.get_by_role("button", name="Revoke").click()
        await page.get_by_role("alertdialog").get_by_role("button", name="Revoke").click()
        await table.get_by_text("Revoked").wait_for()
        assert (await http.get("/auth/me", headers=bearer)).status_code == 401


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def idp(stack: Stack) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(public_url=public_url())
    await provider.start()
    yield provider
    await provider.stop()


async def test_sign_in_with_a_single_sign_on_button(
    stack: Stack, browsing: Browsing, idp: OidcProvider
) -> None:
    admin_email = await create_admin(stack)
    user = await fresh_user(stack)
    account = await idp.add_account(user.email)
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as http:
        r = await http.post("/auth/login", json={"email": admin_email, "password": PASSWORD})
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await http.put(
            "/admin/sso-providers/testidp-browser",
            json=provider_settings(idp, "testidp-browser", label="Browser IdP"),
            headers=admin,
        )
        assert r.status_code == 200, r.text
    page = await localhost_page(browsing)
    await page.goto("/sign-in")
    # the stack is shared with other tests' providers ("Test IdP …"): this one's own label, matched exactly
    await page.get_by_role("button", name="Sign in with Browser IdP", exact=True).click()
    await page.get_by_label("Login").fill(account["email"])  # the provider's own page
    await page.get_by_label("Password").fill(account["password"])
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("heading", name=WELCOME).wait_for()
    assert page.url == public_url() + "/"
    # a provider that refuses sends the browser back with an error: the callback page says so
    other = await localhost_page(browsing)
    await other.goto("/sso/testidp-browser/callback?error=access_denied&error_description=The+user+said+no")
    await other.get_by_text("The provider did not sign you in (The user said no).").wait_for()
    await other.get_by_role("link", name="Back to sign in").click()
    await other.get_by_role("heading", name="Sign in", level=1).wait_for()


async def test_the_policy_leads_an_account_to_enrol_in_russian(stack: Stack, browsing: Browsing) -> None:
    admin_email = await create_admin(stack)
    admin_page = await localhost_page(browsing)
    # Under the policy the services refuse an account without a second factor (the admin's too) all but
    # enrolment: the pages' other requests are answered 403 `enrol_second_factor`.
    admin_page.errors.allow.append("status of 403")
    await password_sign_in(admin_page, admin_email)
    await admin_page.get_by_role("heading", name=WELCOME).wait_for()
    await admin_page.goto("/admin/security")
    try:
        await admin_page.get_by_label("Require a second factor of").select_option("everyone")
        await admin_page.get_by_role("button", name="Save").first.click()
        await admin_page.get_by_text("Policy saved", exact=True).first.wait_for()
        user = await fresh_user(stack)
        async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as http:
            r = await http.post("/auth/login", json={"email": user.email, "password": PASSWORD})
            assert r.json()["user"]["must_enrol_second_factor"] is True, r.text
        page = await localhost_page(browsing, locale="ru-RU")
        page.errors.allow.append("status of 403")
        await page.goto("/sign-in")
        await page.get_by_label("Эл. почта или имя пользователя").fill(user.email)
        await page.get_by_label("Пароль", exact=True).fill(PASSWORD)
        await page.get_by_role("button", name="Войти", exact=True).click()
        await page.get_by_text("Администратор требует второй фактор").first.wait_for()
        assert page.url.startswith(public_url() + "/security")
        await page.get_by_role("heading", name="Безопасность").wait_for()
        await screenshot(page, "security-enrol-ru")
    finally:
        await admin_page.get_by_label("Require a second factor of").select_option("optional")
        await admin_page.get_by_role("button", name="Save").first.click()
        await admin_page.get_by_text("Policy saved", exact=True).last.wait_for()


async def test_under_the_policy_the_app_opens_once_a_second_factor_is_set_up(
    stack: Stack, browsing: Browsing
) -> None:
    """The services refuse the account everything but enrolment (403 `enrol_second_factor`): the app shows why
    and, once an authenticator app is set up on the Security page, works without signing in again."""
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as http:
        r = await http.post("/auth/login", json={"email": await create_admin(stack), "password": PASSWORD})
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        policy = await http.put("/admin/security-policy", json={"second_factor": "everyone"}, headers=admin)
        assert policy.status_code == 200, policy.text
        try:
            user = await fresh_user(stack)
            page = await localhost_page(browsing)
            page.errors.allow.append("status of 403")  # what the services answer until a factor is set up
            await password_sign_in(page, user.email)
            await page.get_by_role("heading", name="Security").wait_for()
            await page.goto("/profile")
            await page.get_by_text("Your administrator requires a second factor").first.wait_for()
            assert not await page.get_by_label("Display name").is_visible()
            await page.get_by_role("link", name="Set it up").click()
            await page.get_by_role("button", name="Set up authenticator app").click()
            secret = (await page.get_by_test_id("totp-secret").inner_text()).strip()
            await page.get_by_label("Code from the app").fill(totp.code_at(secret, totp.current_step()))
            await page.get_by_role("button", name="Confirm and turn on").click()
            await page.get_by_role("button", name="I have saved them").click()
            await page.goto("/profile")
            await page.get_by_label("Display name").wait_for()
            assert not await page.get_by_text("Your administrator requires a second factor").count()
        finally:
            r = await http.put("/admin/security-policy", json={"second_factor": "optional"}, headers=admin)
            assert r.status_code == 200, r.text
