"""Register → verify by the mailed link → sign in → dashboard → sign out, in a real browser."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD, Stack, unique_email

from .conftest import Browsing, mail_token, screenshot, sign_in


async def test_register_verify_sign_in_and_out(stack: Stack, browsing: Browsing) -> None:
    page = await browsing.new_page()
    email_address = unique_email("e2e")

    # A signed-out visitor is sent to sign in, and back to where they were going afterwards.
    await page.goto("/profile")
    await page.wait_for_url(re.compile(r"/sign-in\?next=%2Fprofile"))
    await screenshot(page, "sign-in-light")

    await page.get_by_role("link", name="Create one").click()
    await page.get_by_label("Full name (optional)").fill("Erin Example")
    await page.get_by_label("Email").fill(email_address)
    # The rules follow the typing: too short first, then met.
    await page.get_by_label("Password", exact=True).fill("short")
    rules = page.get_by_test_id("password-rules")
    assert await rules.locator("li[data-ok=false]").count() >= 1
    await page.get_by_label("Password", exact=True).fill("password1234")
    await page.get_by_label("Repeat the password").fill("password1234")
    assert await rules.locator("li[data-ok=false]").count() == 0
    # The server's verdict: a common password is refused with the rule it broke (an expected 422).
    page.errors.allow.append("status of 422")
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_text("The server did not accept this password").wait_for()
    await page.get_by_text(re.compile("not on the list of commonly used")).wait_for()
    await screenshot(page, "register-server-verdict-light")

    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat the password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(re.compile(r"/sign-in\?reason=registered"))
    await page.get_by_text("Account created").wait_for()

    token = await mail_token(stack, email_address, "confirm")
    await page.goto(f"/verify-email#token={token}")
    await page.get_by_text("Your email address is verified").wait_for()

    await sign_in(page, email_address, remember=True)
    await page.get_by_role("heading", name="Welcome, Erin Example").wait_for()
    await screenshot(page, "dashboard-light")
    # Signed-in users are sent away from the sign-in page.
    await page.goto("/sign-in")
    await page.get_by_role("heading", name=re.compile("^Welcome")).wait_for()

    # A dashboard poll still in flight when the session ends is answered 401: expected, not an app error.
    page.errors.allow.append("status of 401")
    await page.get_by_role("button", name="Account menu").click()
    await page.get_by_role("menuitem", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/sign-in\?reason=signed_out"))
    await page.get_by_text("You are signed out.").wait_for()
    # The session is gone for real: the API refuses the old cookies' owner.
    await page.goto("/")
    await page.wait_for_url(re.compile(r"/sign-in"))
