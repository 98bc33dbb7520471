"""Access in a real browser: an admin revokes the Documents grant and the user loses the app at once;
a second user never sees the first user's documents, not even by URL."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.conftest import CORPUS, Stack, create_admin, register_and_login

from .conftest import Browsing, screenshot, sign_in


async def upload(http: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    pdf = (CORPUS / "synthetic" / name).read_bytes()
    r = await http.post("/documents", headers=headers, files={"file": (name, pdf, "application/pdf")})
    assert r.status_code == 201, r.text
    return r.json()["documents"][0]["document"]["id"]


async def test_admin_revokes_documents_and_the_user_loses_it_at_once(
    stack: Stack, browsing: Browsing
) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        user = await register_and_login(http)
    admin_email = await create_admin(stack)

    user_page = await browsing.new_page()
    await sign_in(user_page, user.email)
    nav = user_page.get_by_role("navigation", name="Main navigation")
    await nav.get_by_role("link", name="Documents").click()
    await user_page.get_by_text("No documents yet").wait_for()

    admin_page = await browsing.new_page()
    await sign_in(admin_page, admin_email)
    await admin_page.get_by_role("link", name="App permissions").click()
    await admin_page.get_by_label("Find a user").fill(user.email)
    await admin_page.get_by_role("button", name=re.compile(re.escape(user.email))).click()
    grant = admin_page.get_by_label("Documents (direct grant)")
    await grant.wait_for()
    await expect(grant).to_have_attribute("data-state", "checked")
    await screenshot(admin_page, "admin-permissions-light")
    await grant.click()
    await admin_page.get_by_text("Access revoked", exact=True).wait_for()

    # The user's very next request is refused, and the app leaves the page and the sidebar.
    user_page.errors.allow.append("status of 403")
    await user_page.get_by_label("Search documents").fill("anything")
    await user_page.get_by_text("You don't have access to this app").wait_for()
    await nav.get_by_role("link", name="Documents").wait_for(state="detached")
    await user_page.goto("/apps")
    await user_page.get_by_text("No apps available").wait_for()

    # A group grant gives it back: a group with Documents, and the user as a member.
    group = f"Readers {user.email.split('@')[0][-6:]}"
    await admin_page.get_by_role("tab", name="Groups").click()
    await admin_page.get_by_label("New group").fill(group)
    await admin_page.get_by_role("button", name="Create group").click()
    card = admin_page.locator("div.rounded-xl", has=admin_page.get_by_role("heading", name=group))
    await card.get_by_label("Documents").click()
    await card.get_by_label("Add a member").fill(user.email)
    await card.get_by_role("button", name=re.compile(re.escape(user.email))).click()
    await card.get_by_text("1 member").wait_for()
    await expect(card.get_by_label("Documents")).to_have_attribute("data-state", "checked")
    await screenshot(admin_page, "admin-groups-light")
    await user_page.reload()
    await user_page.get_by_test_id("apps-list").get_by_text("Documents").wait_for()


async def test_a_second_user_never_sees_the_first_users_documents(stack: Stack, browsing: Browsing) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        first = await register_and_login(http)
        second = await register_and_login(http)
        doc_id = await upload(http, first.headers, "invoice_1p.pdf")

    page = await browsing.new_page()
    await sign_in(page, second.email)
    await page.goto("/documents")
    await page.get_by_text("No documents yet").wait_for()
    await page.get_by_label("Search documents").fill("invoice")
    await page.get_by_text("Nothing matches").wait_for()

    # Guessing the id gives "not found", exactly as for an id that never existed.
    page.errors.allow.append("status of 404")
    await page.goto(f"/documents/{doc_id}")
    await page.get_by_role("alert").filter(has_text=re.compile("no such document|not found", re.I)).wait_for()
    await page.goto("/tasks")
    await page.get_by_text("No tasks found").wait_for()
