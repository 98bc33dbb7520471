"""Sessions in a real browser: an expired access token is refreshed silently; a session ended by an
admin sends the user to sign in with a message; the Sessions page ends another session."""

from __future__ import annotations

import re

from tests.conftest import Stack, create_admin

from .conftest import Browsing, screenshot, sign_in, signed_in_user


async def test_expired_access_refreshes_silently_and_a_revoked_session_signs_out(
    stack: Stack, browsing: Browsing
) -> None:
    user, page = await signed_in_user(stack, browsing)
    # The expected refusals of this test show up as failed requests in the console.
    page.errors.allow.append("status of 401")

    # The access cookie is gone (as when it expires): the next call refreshes and the user stays.
    await page.context.clear_cookies(name="atrium_access")
    await page.goto("/sessions")
    await page.get_by_role("heading", name="Sessions", level=1).wait_for()
    await page.get_by_text("This device").wait_for()
    assert any(c["name"] == "atrium_access" for c in await page.context.cookies())

    # A second sign-in of the same user, then the first ends it from the Sessions page.
    other = await browsing.new_page()
    await sign_in(other, user.email)
    other.errors.allow.append("status of 401")
    await page.reload()
    await page.get_by_role("button", name="End", exact=True).first.wait_for()
    await screenshot(page, "sessions-light")
    await page.get_by_role("button", name="End", exact=True).first.click()
    await page.get_by_text("Session ended", exact=True).wait_for()
    await other.get_by_role("button", name="Account menu").click()
    await other.get_by_role("menuitem", name="Profile").click()
    await other.wait_for_url(re.compile(r"/sign-in\?reason=revoked"))
    await other.get_by_text("Your session was ended. Please sign in again.").wait_for()

    # An admin ends every session of the user: the user's next request returns them to sign in.
    admin_page = await browsing.new_page()
    await sign_in(admin_page, await create_admin(stack))
    await admin_page.get_by_role("link", name="Users").click()
    await admin_page.get_by_label("Search").fill(user.email)
    row = admin_page.get_by_test_id("admin-user-row").filter(has_text=user.email)
    await row.get_by_role("button", name=f"End all sessions of {user.email}").click()
    await admin_page.get_by_role("alertdialog").get_by_role("button", name="End sessions").click()
    await admin_page.get_by_text("Sessions ended", exact=True).wait_for()
    await screenshot(admin_page, "admin-users-after-end-light")

    await page.get_by_role("button", name="Account menu").click()
    await page.get_by_role("menuitem", name="Profile").click()
    await page.wait_for_url(re.compile(r"/sign-in\?reason=revoked"))
    await page.get_by_text("Your session was ended. Please sign in again.").wait_for()
