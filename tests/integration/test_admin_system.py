"""The admin's System page: services up, the pipeline's queues, documents per status, storage used."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import CORPUS, AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration.test_documents_pipeline import wait_for_status


async def test_system_status_for_admins_only(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    if not {"docs", "extract"} <= set(stack.services):
        pytest.skip("needs the documents service and the text worker")
    assert (await http.get("/admin/system", headers=new_user.headers)).status_code == 403
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1") as anonymous:  # no session cookie
        assert (await anonymous.get("/admin/system")).status_code == 401

    before = (await http.get("/admin/system", headers=new_admin.headers)).json()
    r = await h.upload(http, new_user, CORPUS / "synthetic" / "invoice_1p.pdf", "invoice_1p.pdf")
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    final = {"ready"} if "ai" in stack.services else {"analyzing"}
    body = await wait_for_status(http, new_user, doc_id, final | {"failed", "needs_ocr"})
    assert body["status"] in final, body

    r = await http.get("/admin/system", headers=new_admin.headers)
    assert r.status_code == 200, r.text
    after = r.json()
    assert set(after["services"]) == set(stack.services)
    assert all(s["status"] == "ok" for s in after["services"].values()), after["services"]
    assert set(after["documents"]) == {"queued", "extracting", "analyzing", "ready", "needs_ocr", "failed"}
    status = body["status"]
    assert after["documents"][status] == before["documents"][status] + 1
    # The original is in the document store, within its budget.
    assert 0 < after["storage_used_bytes"] <= after["storage_limit_bytes"]
    assert after["storage_used_bytes"] > before["storage_used_bytes"]
    # The text worker's consumer of the documents stream, caught up.
    queues = {q["consumer"]: q for q in after["queues"]}
    assert queues, after
    assert all(q["pending"] >= 0 and q["in_work"] >= 0 for q in queues.values())
    assert any("extract" in name for name in queues), queues
