"""Things a new user noticed: the sidebar's background stopping part-way down a long page, amounts shown as
`304277.24`, and the documents table cut off at the status column on a 360 px phone."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import AppUser, Stack, create_admin, register_and_login

from .conftest import Browsing, screenshot, sign_in, signed_in_user
from .test_access import upload
from .test_pages_tour import no_sideways_overflow

TERMINAL = {"ready", "needs_ocr", "failed"}


async def ready_invoice(stack: Stack, user: AppUser, **fields: str) -> str:
    """An invoice of `user`, processed to the end, with `fields` then set by the user."""
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        doc_id = await upload(http, user.headers, "invoice_1p.pdf")
        for _ in range(600):
            r = await http.get(f"/documents/{doc_id}", headers=user.headers)
            assert r.status_code == 200, r.text
            if r.json()["status"] in TERMINAL:
                break
            await asyncio.sleep(0.2)
        assert r.json()["status"] == "ready", r.json()
        if fields:
            r = await http.patch(f"/documents/{doc_id}", headers=user.headers, json={"fields": fields})
            assert r.status_code == 200, r.text
    return doc_id


async def test_sidebar_background_covers_a_long_page(stack: Stack, browsing: Browsing) -> None:
    admin_email = await create_admin(stack)
    page = await browsing.new_page(width=1280, height=600)
    await sign_in(page, admin_email)
    await page.goto("/admin/documents")  # the settings form is much taller than 600 px
    await page.get_by_role("heading", name="Documents settings", level=1).wait_for()
    page_height = await page.evaluate("() => document.documentElement.scrollHeight")
    assert page_height > 900, "the page must be long for this test to mean anything"

    sidebar = page.get_by_test_id("sidebar")
    box = await sidebar.bounding_box()
    assert box is not None
    assert box["y"] <= 0 and box["y"] + box["height"] >= page_height - 1, (box, page_height)
    background = await sidebar.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background

    await screenshot(page, "sidebar-long-page")
    # Scrolled to the bottom, the navigation is still in view.
    await page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    link = sidebar.get_by_role("link", name="Audit log")
    link_box = await link.bounding_box()
    assert link_box is not None and 0 <= link_box["y"] < 600, link_box


async def test_amounts_in_the_locale_money_format(stack: Stack, browsing: Browsing) -> None:
    user, page = await signed_in_user(stack, browsing)
    doc_id = await ready_invoice(stack, user, total_amount="304277.24", currency="EUR")

    await page.goto(f"/documents/{doc_id}")
    value = page.get_by_test_id("field-total_amount-value")
    await value.filter(has_text="€304,277.24").wait_for()
    assert await value.inner_text() == "€304,277.24"
    # Editing shows the number itself, not the formatted text.
    await (
        page.get_by_test_id("field-total_amount").get_by_role("button", name="Edit Total", exact=True).click()
    )
    assert await page.get_by_label("Total", exact=True).input_value() == "304277.24"
    await page.keyboard.press("Escape")

    await page.goto("/documents")
    await page.get_by_test_id("document-amount").filter(has_text="€304,277.24").wait_for()

    await page.get_by_role("button", name="Language").click()
    await page.get_by_role("menuitemradio", name="Русский").click()
    await page.get_by_test_id("document-amount").filter(has_text="€").wait_for()
    assert await page.get_by_test_id("document-amount").inner_text() == "304\u00a0277,24\u00a0€"
    await page.goto(f"/documents/{doc_id}")
    await value.filter(has_text="277,24").wait_for()
    assert await value.inner_text() == "304\u00a0277,24\u00a0€"

    # Emptying the field clears it (the API's `clear`): the amount is gone, the user's choice is kept.
    total = page.get_by_test_id("field-total_amount")
    await total.get_by_role("button", name="Изменить: Итого").click()
    await page.locator("#field-total_amount").fill("")
    await page.locator("#field-total_amount").press("Enter")
    await value.filter(has_text="Не задано").wait_for()
    assert await total.get_attribute("data-source") == "user"


async def test_documents_are_cards_on_a_360px_phone(stack: Stack, browsing: Browsing) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        user = await register_and_login(http)
    await ready_invoice(stack, user, total_amount="1250.50", currency="USD")
    phone = await browsing.new_page(width=360, height=740)
    await sign_in(phone, user.email)
    await phone.goto("/documents")

    card = phone.get_by_test_id("document-card")
    await card.wait_for()
    assert await card.count() == 1
    assert await phone.get_by_test_id("documents-table").count() == 0
    await no_sideways_overflow(phone)
    # Everything the table row said is on the card, inside the screen.
    for part in (card.get_by_role("link"), card.locator("[data-status]"), card.get_by_text("$1,250.50")):
        box = await part.first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    assert await card.get_attribute("data-status") == "ready"
    await card.get_by_role("checkbox").check()
    await phone.get_by_test_id("selection-count").filter(has_text="1 selected").wait_for()
    await screenshot(phone, "documents-cards-phone-light")
