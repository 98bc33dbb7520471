"""Rejecting an AI-suggested category on the document detail page, in a real browser: gone at once and
still gone after a re-run of the analysis."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.conftest import CORPUS, AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS
from tests.integration.test_ai_pipeline import settled

from .conftest import Browsing, sign_in


async def test_reject_a_suggested_category_on_the_detail_page(
    stack: Stack, browsing: Browsing, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    r = await http.patch("/apps/documents/settings", json=BUILTIN_DEFAULTS, headers=new_admin.headers)
    assert r.status_code == 200, r.text
    r = await http.post("/categories", json={"name": "Invoices"}, headers=new_user.headers)
    assert r.status_code in (200, 201), r.text
    pdf = (CORPUS / "synthetic" / "invoice_1p.pdf").read_bytes()
    r = await http.post(
        "/documents", headers=new_user.headers, files={"file": ("inv.pdf", pdf, "application/pdf")}
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    doc = await settled(http, new_user, doc_id)
    assert [(c["name"], c["source"]) for c in doc["categories"]] == [("Invoices", "ai")], doc["categories"]

    page = await browsing.new_page()
    await sign_in(page, new_user.email)
    await page.goto(f"/documents/{doc_id}")
    assigned = page.get_by_test_id("detail-categories")
    await assigned.get_by_text("Invoices").wait_for()
    await assigned.get_by_role("button", name="Reject suggestion Invoices").click()
    await expect(assigned.get_by_text("Invoices")).to_have_count(0)

    r = await http.post(f"/documents/{doc_id}/reprocess", headers=new_user.headers)
    assert r.status_code == 200, r.text
    doc = await settled(http, new_user, doc_id, run_id=r.json()["run_id"])
    assert doc["status"] == "ready" and doc["categories"] == [], doc
    await page.reload()
    await page.get_by_text("Ready").first.wait_for()
    await expect(assigned.get_by_text("Invoices")).to_have_count(0)
