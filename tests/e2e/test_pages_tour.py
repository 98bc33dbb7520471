"""Every main page in both themes, on a desktop and on a 360 px phone: it renders, nothing overflows
sideways, the theme and language switches work, and keyboard focus is visible. Screenshots of each
page in both themes go to test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx

from tests.conftest import PASSWORD, Stack, create_admin

from .conftest import Browsing, screenshot, sign_in
from .test_access import upload

PAGES = [
    ("dashboard", "/", re.compile("^Welcome")),
    ("apps", "/apps", "Apps"),
    ("documents", "/documents", "Documents"),
    ("categories", "/categories", "Categories"),
    ("tasks", "/tasks", "Task history"),
    ("profile", "/profile", "Profile"),
    ("sessions", "/sessions", "Sessions"),
    ("admin-users", "/admin/users", "Users"),
    ("admin-permissions", "/admin/permissions", "App permissions"),
    ("admin-documents-settings", "/admin/documents", "Documents settings"),
    ("admin-audit", "/admin/audit", "Audit log"),
    ("admin-system", "/admin/system", "System"),
]


async def no_sideways_overflow(page) -> None:  # type: ignore[no-untyped-def]
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        culprits = await page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
            ".slice(-5).map(e => e.tagName + '.' + (e.className.baseVal ?? e.className).slice(0, 80))"
        )
        raise AssertionError(f"{page.url} is {overflow}px wider than the viewport: {culprits}")


async def test_every_page_in_both_themes_and_on_a_phone(stack: Stack, browsing: Browsing) -> None:
    admin_email = await create_admin(stack)
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        r = await http.post("/auth/login", json={"email": admin_email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        doc_id = await upload(http, headers, "invoice_1p.pdf")
        for _ in range(600):
            status = (await http.get(f"/documents/{doc_id}", headers=headers)).json()["status"]
            if status in ("ready", "needs_ocr", "failed"):
                break
            await asyncio.sleep(0.2)
    assert status == "ready"
    pages = PAGES + [("document-detail", f"/documents/{doc_id}", re.compile("invoice|INVOICE", re.I))]

    for scheme in ("light", "dark"):
        page = await browsing.new_page(color_scheme=scheme)
        await sign_in(page, admin_email)
        dark = await page.evaluate("() => document.documentElement.classList.contains('dark')")
        assert dark == (scheme == "dark"), "the system theme is followed"
        for name, path, heading in pages:
            await page.goto(path)
            await page.get_by_role("heading", name=heading, level=1).first.wait_for()
            await page.wait_for_load_state("networkidle")
            await no_sideways_overflow(page)
            await screenshot(page, f"{name}-{scheme}")

    phone = await browsing.new_page(width=360, height=740)
    await sign_in(phone, admin_email)
    for name, path, heading in pages:
        await phone.goto(path)
        await phone.get_by_role("heading", name=heading, level=1).first.wait_for()
        await phone.wait_for_load_state("networkidle")
        await no_sideways_overflow(phone)
        await screenshot(phone, f"{name}-phone-light")
    # The sidebar is a menu on a phone.
    await phone.get_by_role("button", name="Open menu").click()
    await phone.get_by_role("dialog", name="Main navigation").get_by_role("link", name="Categories").click()
    await phone.get_by_role("heading", name="Categories", level=1).wait_for()


async def test_theme_language_and_keyboard(stack: Stack, browsing: Browsing) -> None:
    admin_email = await create_admin(stack)
    page = await browsing.new_page()
    await sign_in(page, admin_email)

    await page.get_by_role("button", name="Theme").click()
    await page.get_by_role("menuitemradio", name="Dark").click()
    assert await page.evaluate("() => document.documentElement.classList.contains('dark')")
    await page.reload()
    assert await page.evaluate("() => document.documentElement.classList.contains('dark')"), (
        "the choice is kept"
    )

    await page.get_by_role("button", name="Language").click()
    await page.get_by_role("menuitemradio", name="Русский").click()
    await page.get_by_role("heading", name=re.compile("^Добро пожаловать")).wait_for()
    assert await page.evaluate("() => document.documentElement.lang") == "ru"
    await page.goto("/documents")
    await page.get_by_role("heading", name="Документы", level=1).wait_for()
    await screenshot(page, "documents-ru-dark")
    await page.get_by_role("button", name="Язык").click()
    await page.get_by_role("menuitemradio", name="English").click()
    await page.get_by_role("heading", name="Documents", level=1).wait_for()

    # Keyboard: on a fresh page the skip link comes first, then every control shows where the focus is.
    await page.reload()
    await page.get_by_role("heading", name="Documents", level=1).wait_for()
    await page.keyboard.press("Tab")
    focused = await page.evaluate("() => document.activeElement.textContent")
    assert focused == "Skip to content"
    for _ in range(6):
        await page.keyboard.press("Tab")
        outline = await page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 || s.boxShadow !== 'none'; }"
        )
        assert outline, await page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")


async def test_task_history_exports_csv_and_json(stack: Stack, browsing: Browsing) -> None:
    admin_email = await create_admin(stack)
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        r = await http.post("/auth/login", json={"email": admin_email, "password": PASSWORD})
        await upload(http, {"Authorization": f"Bearer {r.json()['access_token']}"}, "letter_1p.pdf")
    page = await browsing.new_page()
    await sign_in(page, admin_email)
    await page.goto("/tasks")
    await page.get_by_test_id("task-table").get_by_text("letter_1p.pdf").first.wait_for()
    async with page.expect_download() as csv_download:
        await page.get_by_role("button", name="Export CSV").click()
    csv_text = Path(await (await csv_download.value).path()).read_text()
    assert csv_text.splitlines()[0].startswith("id,") and "letter_1p.pdf" in csv_text
    async with page.expect_download() as json_download:
        await page.get_by_role("button", name="Export JSON").click()
    rows = json.loads(Path(await (await json_download.value).path()).read_text())
    assert any(row["filename"] == "letter_1p.pdf" for row in rows)
