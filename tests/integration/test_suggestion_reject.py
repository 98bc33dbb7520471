"""Rejecting an AI-suggested category: it leaves the document and no later analysis suggests it there again."""

from __future__ import annotations

import httpx

from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS
from tests.integration import docs_helpers as h
from tests.integration.test_ai_pipeline import settled

SETTINGS = "/apps/documents/settings"


async def test_a_rejected_suggestion_stays_rejected_after_reprocess(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    r = await http.patch(SETTINGS, json=BUILTIN_DEFAULTS, headers=new_admin.headers)
    assert r.status_code == 200, r.text
    # The builtin provider suggests "Invoices" for an invoice; the category exists so it is applied.
    r = await http.post("/categories", json={"name": "Invoices"}, headers=new_user.headers)
    assert r.status_code in (200, 201), r.text
    invoices = r.json()["id"]
    r = await h.upload(http, new_user, h.INVOICE, "invoice.pdf")
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    doc = await settled(http, new_user, doc_id)
    assert doc["status"] == "ready", doc
    assert {"id": invoices, "name": "Invoices", "source": "ai"} in doc["categories"], doc["categories"]

    r = await http.patch(
        f"/documents/{doc_id}", json={"reject_categories": [invoices]}, headers=new_user.headers
    )
    assert r.status_code == 200, r.text
    assert all(c["id"] != invoices for c in r.json()["categories"])

    r = await http.post(f"/documents/{doc_id}/reprocess", headers=new_user.headers)
    assert r.status_code == 200, r.text
    doc = await settled(http, new_user, doc_id, run_id=r.json()["run_id"])
    assert doc["status"] == "ready", doc
    assert doc["fields"]["document_type"]["value"] == "invoice"  # the analysis ran and would suggest it
    assert all(c["id"] != invoices for c in doc["categories"]), doc["categories"]

    # Another user's category cannot be rejected through this document (nor its existence learned).
    r = await http.patch(
        f"/documents/{doc_id}", json={"reject_categories": [doc_id]}, headers=new_user.headers
    )
    assert r.status_code == 404, r.text
