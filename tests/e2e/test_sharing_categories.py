"""Sharing from the categories page and a link's uses, in a real browser: the owner shares a category with a
person (viewer) and a group (editor) from the categories page, both members find the documents filed under
it in "Shared with me" with their roles, a document filed later is shared too, and revoking each share
takes its documents away on the next request. Then the owner sees who opened a share link: the visitor's
uses (when, what, from where) listed under the link on the detail page."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from tests.conftest import PASSWORD, AppUser, Stack, create_admin, register_and_login
from tests.integration.sharing_helpers import group, known, listed

from .conftest import Browsing, screenshot, sign_in
from .test_access import upload


async def _file(http: httpx.AsyncClient, owner: AppUser, doc_id: str, cat_id: str) -> None:
    r = await http.post(
        "/documents/bulk",
        json={"action": "assign_category", "ids": [doc_id], "category_id": cat_id},
        headers=owner.headers,
    )
    assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text


async def _admin(http: httpx.AsyncClient, stack: Stack) -> AppUser:
    email = await create_admin(stack)
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    return AppUser(body["user"]["id"], email, PASSWORD, body["access_token"], body["refresh_token"])


async def test_share_a_category_with_a_person_and_a_group_then_revoke(
    stack: Stack, browsing: Browsing
) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        owner = await register_and_login(http)
        reader = await register_and_login(http)
        teammate = await register_and_login(http)
        await known(stack, owner, reader, teammate)
        admin = await _admin(http, stack)
        team = await group(http, admin, teammate)
        r = await http.post("/categories", json={"name": "Household contracts"}, headers=owner.headers)
        assert r.status_code in (200, 201), r.text
        cat_id = r.json()["id"]
        filed = await upload(http, owner.headers, "invoice_1p.pdf")
        unfiled = await upload(http, owner.headers, "letter_1p.pdf")
        await _file(http, owner, filed, cat_id)

        page = await browsing.new_page()
        await sign_in(page, owner.email)
        await page.goto("/categories")
        await page.get_by_role("button", name="Share Household contracts").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_text("Not shared with anyone yet.").wait_for()

        # A person as viewer, then the group as editor, from the same dialog.
        await dialog.get_by_label("Email").fill(reader.email)
        await dialog.get_by_label("Role").select_option("viewer")
        await dialog.get_by_role("button", name="Share").click()
        rows = dialog.get_by_test_id("share-row")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text(reader.email)
        await expect(rows.first).to_contain_text("Viewer")
        await dialog.get_by_label("Share with").select_option("group")
        group_name = (await http.get("/sharing/groups", headers=owner.headers)).json()
        name = next(g["name"] for g in group_name["groups"] if g["id"] == team)
        await dialog.get_by_label("A group", exact=True).select_option(team)
        await dialog.get_by_label("Role").select_option("editor")
        await dialog.get_by_role("button", name="Share").click()
        await expect(rows).to_have_count(2)
        await expect(dialog.get_by_test_id("share-row").filter(has_text=name)).to_contain_text("Editor")
        await screenshot(page, "category-shared-light")

        # The server agrees: the category's shares, and what each member now sees.
        got = (await http.get(f"/categories/{cat_id}/shares", headers=owner.headers)).json()
        assert sorted(s["role"] for s in got["shares"]) == ["editor", "viewer"], got
        assert [d["id"] for d in await listed(http, reader, scope="shared")] == [filed]
        assert [d["id"] for d in await listed(http, teammate, scope="shared")] == [filed]

        # The reader's "Shared with me", in the browser: the filed document, as a viewer.
        other = await browsing.new_page()
        await sign_in(other, reader.email)
        await other.goto("/documents?scope=shared")
        badge = other.get_by_test_id("shared-badge")
        await expect(badge).to_have_count(1)
        await expect(badge.first).to_contain_text(f"Shared by {owner.email}")
        await expect(badge.first).to_contain_text("Viewer")

        # Filed later: shared too (the category's documents, now and later).
        await _file(http, owner, unfiled, cat_id)
        assert sorted(d["id"] for d in await listed(http, reader, scope="shared")) == sorted([filed, unfiled])
        await other.reload()
        await expect(other.get_by_test_id("shared-badge")).to_have_count(2)

        # Revoking the person's share: the reader sees nothing on the next request; the group keeps its own.
        await dialog.get_by_role(
            "button", name=re.compile(f"^Stop sharing with {re.escape(reader.email)}")
        ).click()
        await expect(rows).to_have_count(1)
        await other.reload()
        await other.get_by_text("Nothing matches").wait_for()
        assert await listed(http, reader, scope="shared") == []
        assert len(await listed(http, teammate, scope="shared")) == 2

        # And the group's: the dialog says it is shared with no one, and the teammate sees nothing either.
        await dialog.get_by_role("button", name=re.compile(f"^Stop sharing with {re.escape(name)}")).click()
        await dialog.get_by_text("Not shared with anyone yet.").wait_for()
        assert await listed(http, teammate, scope="shared") == []
        got = (await http.get(f"/categories/{cat_id}/shares", headers=owner.headers)).json()
        assert got["shares"] == [], got


async def test_the_owner_sees_who_used_a_share_link(stack: Stack, browsing: Browsing) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        owner = await register_and_login(http)
        doc_id = await upload(http, owner.headers, "invoice_1p.pdf")
        r = await http.post(f"/documents/{doc_id}/links", json={"mode": "download"}, headers=owner.headers)
        assert r.status_code == 201, r.text
        token = r.json()["token"]

    page = await browsing.new_page()
    await sign_in(page, owner.email)
    await page.goto(f"/documents/{doc_id}")
    link_row = page.get_by_test_id("access").get_by_test_id("link-row")
    await expect(link_row).to_contain_text("0 uses")
    await expect(link_row.get_by_test_id("link-uses")).to_have_count(0)

    # A visitor opens the link in a browser and downloads the file: two audited uses.
    visitor = await browsing.new_page()
    await visitor.goto(f"/s/{token}")
    download = visitor.get_by_role("link", name="Download")
    await download.wait_for()
    href = await download.get_attribute("href")
    assert href
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        got = await http.get(href)
        assert got.status_code == 200 and got.content.startswith(b"%PDF"), got.status_code

    # The owner's detail page lists them, newest first: when, what, from which address.
    await page.reload()
    await expect(link_row).to_contain_text("2 uses")
    await link_row.get_by_text("Who opened it").click()
    uses = link_row.get_by_test_id("link-use")
    await expect(uses).to_have_count(2)
    await expect(uses.nth(0)).to_contain_text("downloaded")
    await expect(uses.nth(1)).to_contain_text("opened")
    await expect(uses.nth(1)).to_contain_text("127.0.0.1")
    await screenshot(page, "share-link-uses-light")


async def test_a_failed_links_request_is_shown_and_can_be_tried_again(
    stack: Stack, browsing: Browsing
) -> None:
    """The owner's access panel says when its share links could not be loaded (it showed nothing before), and
    "Try again" loads them."""
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        owner = await register_and_login(http)
        doc_id = await upload(http, owner.headers, "invoice_1p.pdf")
        r = await http.post(f"/documents/{doc_id}/links", json={"mode": "preview"}, headers=owner.headers)
        assert r.status_code == 201, r.text

    page = await browsing.new_page()
    await sign_in(page, owner.email)
    failures = {"left": 3}  # the app's queries try a 5xx three times before they show the error

    async def links_unavailable(route: Any) -> None:
        if failures["left"] > 0 and route.request.method == "GET":
            failures["left"] -= 1
            body = {"error": {"code": "unavailable", "message": "The documents service is busy; try again."}}
            await route.fulfill(status=503, json=body, headers={"Retry-After": "1"})
        else:
            await route.continue_()

    page.errors.allow.append("status of 503")  # the console's note of the refused requests
    await page.route(re.compile(rf".*/api/v1/documents/{doc_id}/links$"), links_unavailable)
    await page.goto(f"/documents/{doc_id}")
    access = page.get_by_test_id("access")
    failed = access.get_by_test_id("links-error")
    await expect(failed.get_by_role("alert")).to_contain_text("The documents service is busy")
    await expect(access.get_by_test_id("link-row")).to_have_count(0)
    await failed.get_by_role("button", name="Try again").click()
    await expect(access.get_by_test_id("link-row")).to_contain_text("Preview only")
    await expect(access.get_by_test_id("links-error")).to_have_count(0)
