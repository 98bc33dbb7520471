"""The admin's System page in a real browser: every service up, documents per status, queues, storage."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import AppUser, Stack

from .conftest import Browsing, screenshot, sign_in


async def test_system_page_shows_services_documents_queues_and_storage(
    stack: Stack, browsing: Browsing, new_admin: AppUser
) -> None:
    page = await browsing.new_page()
    await sign_in(page, new_admin.email)
    await page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="System").click()
    await page.get_by_role("heading", name="System", level=1).wait_for()
    services = page.locator("[aria-labelledby=system-services]")
    for name in stack.services:
        row = services.locator("li").filter(has_text=name)
        await expect(row.get_by_text("Up", exact=True)).to_be_visible()
    documents = page.locator("[aria-labelledby=system-documents]")
    for status in ("Queued", "Ready", "Failed"):
        await expect(documents.get_by_text(status, exact=True)).to_be_visible()
    await expect(page.get_by_role("progressbar", name="Document storage")).to_be_visible()
    if "docs" in stack.services:
        queues = page.locator("[aria-labelledby=system-queues]")
        await expect(queues.get_by_role("cell", name="docs-processing")).to_be_visible()
    await screenshot(page, "admin-system")
