"""Sharing in a real browser: the owner shares a document with a colleague from the detail page's share
dialog, the colleague finds it under "Shared with me" with a badge and sees their access; the owner creates a
password-protected download link, an outsider opens it without an account, and revoking it closes it."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.conftest import Stack, register_and_login
from tests.integration.sharing_helpers import known

from .conftest import Browsing, screenshot, sign_in
from .test_access import upload


async def test_share_with_a_person_and_through_a_link(stack: Stack, browsing: Browsing) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        owner = await register_and_login(http)
        colleague = await register_and_login(http)
        await known(stack, owner, colleague)
        doc_id = await upload(http, owner.headers, "invoice_1p.pdf")

    # The owner shares it as an editor from the detail page.
    page = await browsing.new_page()
    await sign_in(page, owner.email)
    await page.goto(f"/documents/{doc_id}")
    access = page.get_by_test_id("access")
    await access.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Email").fill(colleague.email)
    await dialog.get_by_label("Role").select_option("editor")
    await dialog.get_by_role("button", name="Share").click()
    await dialog.wait_for(state="detached")
    row = access.get_by_test_id("share-row")
    await expect(row).to_contain_text(colleague.email)
    await expect(row).to_contain_text("Editor")

    # A stranger's email is refused with the server's message, in the dialog.
    page.errors.allow.append("status of 404")
    await access.get_by_role("button", name="Share").click()
    await dialog.get_by_label("Email").fill("nobody-here@example.com")
    await dialog.get_by_role("button", name="Share").click()
    await dialog.get_by_role("alert").wait_for()
    await page.keyboard.press("Escape")

    # A download link with a password: its address is shown once.
    await access.get_by_role("button", name="Create link").click()
    await dialog.get_by_label("The link lets them").select_option("download")
    await dialog.get_by_label(re.compile("^Password")).fill("open sesame")
    await dialog.get_by_role("button", name="Create link").click()
    address = await dialog.get_by_label("The link", exact=True).input_value()
    assert re.fullmatch(r"https?://[^/]+/s/[A-Za-z0-9_-]{43}", address), address
    await screenshot(page, "share-link-created-light")
    await page.keyboard.press("Escape")
    link_row = access.get_by_test_id("link-row")
    await expect(link_row).to_contain_text("password")

    # The colleague: "Shared with me" lists it with who shared it and the role; the detail page says so too.
    other = await browsing.new_page()
    await sign_in(other, colleague.email)
    await other.goto("/documents")
    await other.get_by_label("Show", exact=True).select_option("shared")
    await expect(other).to_have_url(re.compile(r"scope=shared"))
    badge = other.get_by_test_id("shared-badge").first
    await expect(badge).to_contain_text(f"Shared by {owner.email}")
    await expect(badge).to_contain_text("Editor")
    await screenshot(other, "shared-with-me-light")
    await other.goto(f"/documents/{doc_id}")
    await expect(other.get_by_test_id("access")).to_contain_text("Shared with you as Editor.")
    await other.get_by_role("button", name="Re-process").wait_for()
    await expect(other.get_by_role("button", name="Delete")).to_have_count(0)
    await expect(other.get_by_role("button", name="Share")).to_have_count(0)

    # An outsider opens the link: the password, then the file, and nothing else.
    visitor = await browsing.new_page()
    visitor.errors.allow.append("status of 404")
    path = address.split("://", 1)[1].split("/", 1)[1]
    await visitor.goto("/" + path)
    await visitor.get_by_text("This link is protected by a password.").wait_for()
    await visitor.get_by_label("Password").fill("open sesame")
    await visitor.get_by_role("button", name="Open").click()
    download = visitor.get_by_role("link", name="Download")
    await download.wait_for()
    await expect(visitor.get_by_role("heading", name="invoice_1p.pdf")).to_be_visible()
    href = await download.get_attribute("href")
    assert href and "ticket=" in href
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        got = await http.get(href)
        assert got.status_code == 200 and got.content.startswith(b"%PDF"), got.status_code
    await screenshot(visitor, "share-link-visitor-light")

    # The owner revokes the link: the visitor's page no longer opens.
    await page.reload()
    await access.get_by_role("button", name="Revoke the link").click()
    await expect(access.get_by_test_id("link-row")).to_contain_text("Link revoked")
    await visitor.reload()
    await visitor.get_by_role("alert").wait_for()
    await expect(visitor.get_by_role("link", name="Download")).to_have_count(0)

    # The owner stops sharing: the colleague's "Shared with me" is empty on the next request.
    await access.get_by_role(
        "button", name=re.compile(f"^Stop sharing with {re.escape(colleague.email)}")
    ).click()
    await expect(access.get_by_test_id("share-row")).to_have_count(0)
    await other.goto("/documents?scope=shared")
    await other.get_by_text("Nothing matches").wait_for()
