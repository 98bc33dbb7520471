"""The Admin users page in a real browser: change a user's role, deactivate and reactivate them, and start a
password reset whose mailed link sets a new password."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.conftest import PASSWORD, AppUser, Stack

from .conftest import Browsing, mail_token, screenshot, sign_in

NEW_PASSWORD = "another sturdy passphrase 77"


async def login_status(http: httpx.AsyncClient, email: str, password: str) -> int:
    return (await http.post("/auth/login", json={"email": email, "password": password})).status_code


async def test_admin_changes_role_and_active_flag_and_starts_a_reset(
    stack: Stack, browsing: Browsing, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    page = await browsing.new_page()
    await sign_in(page, new_admin.email)
    await page.goto("/admin/users")
    await page.get_by_label("Search").fill(new_user.email)
    row = page.get_by_test_id("admin-user-row").filter(has_text=new_user.email)
    await expect(page.get_by_test_id("admin-user-row")).to_have_count(1)

    # Role: the change is saved, and the user signs in as an admin from now on.
    await row.get_by_label(f"Role of {new_user.email}").select_option("admin")
    await page.get_by_text("User updated", exact=True).first.wait_for()
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin", r.text
    await page.reload()
    await page.get_by_label("Search").fill(new_user.email)
    await expect(row.get_by_label(f"Role of {new_user.email}")).to_have_value("admin")
    await row.get_by_label(f"Role of {new_user.email}").select_option("user")
    await expect(row.get_by_label(f"Role of {new_user.email}")).to_have_value("user")

    # Deactivating asks first; a deactivated user cannot sign in until reactivated.
    page.errors.allow.append("status of 40[13]")
    await row.get_by_role("checkbox").click()
    dialog = page.get_by_role("alertdialog")
    await dialog.get_by_text(f"Deactivate {new_user.email}?").wait_for()
    await dialog.get_by_role("button", name="Deactivate").click()
    await expect(row.get_by_text("Deactivated", exact=True)).to_be_visible()
    await screenshot(page, "admin-users-deactivated-light")
    assert await login_status(http, new_user.email, PASSWORD) in (401, 403)
    await row.get_by_role("checkbox").click()
    await expect(row.get_by_text("Active", exact=True)).to_be_visible()
    assert await login_status(http, new_user.email, PASSWORD) == 200

    # A reset started by the admin: the mail's link sets a new password, the old one stops working.
    await row.get_by_role("button", name=f"Send {new_user.email} a password reset").click()
    await dialog.get_by_role("button", name="Send reset").click()
    await page.get_by_text("Password reset email sent", exact=True).first.wait_for()
    token = await mail_token(stack, new_user.email, "reset")

    user_page = await browsing.new_page()
    await user_page.goto(f"/reset-password#token={token}")
    await user_page.get_by_label("New password").fill(NEW_PASSWORD)
    await user_page.get_by_role("button", name="Set password").click()
    await user_page.wait_for_url(re.compile(r"/sign-in\?reason=reset"))
    await sign_in(user_page, new_user.email, NEW_PASSWORD)
    assert await login_status(http, new_user.email, PASSWORD) == 401
