"""Profile with avatar upload and preview; the admin's Documents settings with a masked key and a
connection test — in a real browser against the real services."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.async_api import expect

from tests.conftest import Stack, create_admin

from .conftest import Browsing, screenshot, sign_in, signed_in_user


async def test_profile_edit_and_avatar(stack: Stack, browsing: Browsing, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, page = await signed_in_user(stack, browsing)
    await page.goto("/profile")
    await page.get_by_label("Display name").fill("Dana")
    await page.get_by_label("Job title").fill("Archivist")
    # A phone number the server cannot read is refused with its own words, next to the field.
    page.errors.allow.append("status of 422")
    await page.get_by_label("Phone").fill("12")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("international format").wait_for()
    await page.get_by_label("Phone").fill("+44 20 7946 0958")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("Profile saved", exact=True).wait_for()
    await page.reload()
    await expect(page.get_by_label("Phone")).to_have_value("+442079460958")
    await expect(page.get_by_label("Display name")).to_have_value("Dana")

    image = tmp_path / "me.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (79, 70, 229)).save(buf, format="PNG")
    image.write_bytes(buf.getvalue())
    await page.set_input_files("#avatar", str(image))
    await page.get_by_text("Preview — not saved yet").wait_for()
    await page.get_by_role("button", name="Save picture").click()
    await page.get_by_text("Picture saved", exact=True).wait_for()
    await page.get_by_role("button", name="Remove").wait_for()
    # The saved picture is served by the API and shown after a reload.
    await page.reload()
    await expect(page.locator("main img").first).to_have_attribute(
        "src", re.compile(r"^/api/v1/profile/avatar")
    )
    assert await page.locator("main img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    await screenshot(page, "profile-light")


async def test_documents_settings_masked_key_and_connection_test(stack: Stack, browsing: Browsing) -> None:
    page = await browsing.new_page()
    await sign_in(page, await create_admin(stack))
    await page.goto("/admin/documents")
    await page.get_by_label("Max upload size (MB)").fill("40")
    await page.get_by_label("Duplicate uploads").select_option("reject")
    await page.get_by_label("API key").fill("sk-test-secret-abcd")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("Settings saved", exact=True).wait_for()
    await page.reload()
    await expect(page.get_by_label("Max upload size (MB)")).to_have_value("40")
    await expect(page.get_by_label("Duplicate uploads")).to_have_value("reject")
    # The key is never shown again: only that one is set and its last four characters.
    assert await page.get_by_label("API key").input_value() == ""
    await page.get_by_text("A key is set (ends in abcd)").first.wait_for()
    assert "sk-test-secret" not in await page.content()

    await page.get_by_role("button", name="Test connection").click()
    await page.get_by_test_id("test-result").wait_for()
    await screenshot(page, "admin-documents-settings-tested-light")
    # Put the shared settings back for the other tests on this stack.
    await page.get_by_label("Max upload size (MB)").fill("50")
    await page.get_by_label("Duplicate uploads").select_option("mark")
    await page.get_by_role("button", name="Remove key").click()
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("Settings saved", exact=True).wait_for()
