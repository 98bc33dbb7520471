"""Suggested categories the AI may not create wait on the document for the user to accept or reject."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS
from tests.integration import docs_helpers as h
from tests.integration.test_ai_pipeline import settled

SETTINGS = "/apps/documents/settings"


@pytest.fixture
async def ai_may_not_create(http: httpx.AsyncClient, new_admin: AppUser) -> AsyncIterator[None]:
    before = (await http.get(SETTINGS, headers=new_admin.headers)).json()["ai_may_create_categories"]
    r = await http.patch(
        SETTINGS, json={**BUILTIN_DEFAULTS, "ai_may_create_categories": False}, headers=new_admin.headers
    )
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        await http.patch(SETTINGS, json={"ai_may_create_categories": before}, headers=new_admin.headers)


async def _ready_invoice(http: httpx.AsyncClient, user: AppUser) -> dict:
    r = await h.upload(http, user, h.INVOICE, "invoice.pdf")
    assert r.status_code == 201, r.text
    doc = await settled(http, user, r.json()["documents"][0]["document"]["id"])
    assert doc["status"] == "ready", doc
    return doc


async def test_an_accepted_suggestion_becomes_an_assigned_category(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, ai_may_not_create: None
) -> None:
    doc = await _ready_invoice(http, new_user)
    # The builtin provider suggests "Invoices"; the user has no categories, so it waits instead of being dropped.
    assert doc["pending_suggestions"] == ["Invoices"], doc
    assert doc["categories"] == []
    assert (await http.get("/categories", headers=new_user.headers)).json()["items"] == []

    r = await http.patch(
        f"/documents/{doc['id']}", json={"accept_suggestions": ["Nonsense"]}, headers=new_user.headers
    )
    assert r.status_code == 422, r.text
    assert "Nonsense" in r.text

    r = await http.patch(
        f"/documents/{doc['id']}", json={"accept_suggestions": ["invoices"]}, headers=new_user.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pending_suggestions"] == []
    cats = (await http.get("/categories", headers=new_user.headers)).json()["items"]
    assert [c["name"] for c in cats] == ["Invoices"]
    assert body["categories"] == [{"id": cats[0]["id"], "name": "Invoices", "source": "user"}]


async def test_a_rejected_suggestion_stays_rejected_after_reprocess(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, ai_may_not_create: None
) -> None:
    doc = await _ready_invoice(http, new_user)
    assert doc["pending_suggestions"] == ["Invoices"], doc
    r = await http.patch(
        f"/documents/{doc['id']}", json={"reject_suggestions": ["Invoices"]}, headers=new_user.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["pending_suggestions"] == []

    r = await http.post(f"/documents/{doc['id']}/reprocess", headers=new_user.headers)
    assert r.status_code == 200, r.text
    doc = await settled(http, new_user, doc["id"], run_id=r.json()["run_id"])
    assert doc["status"] == "ready", doc
    assert doc["fields"]["document_type"]["value"] == "invoice"  # the analysis ran and would suggest it
    assert doc["pending_suggestions"] == [] and doc["categories"] == [], doc
    assert (await http.get("/categories", headers=new_user.headers)).json()["items"] == []
