"""Owner isolation and the app grant: another user's documents, files, categories and tasks do not exist
for you (404, same as a guessed id), and a user without the Documents grant gets 403 everywhere."""

from __future__ import annotations

import uuid

import httpx

from contracts import Empty, Forbidden
from contracts.docs_api import DOCUMENT_COUNTS, DOCUMENT_LIST, UPLOAD_PREPARE
from contracts.permissions import REVOKE, UserGrantChange
from services.kit.client import call
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h


async def test_second_user_gets_404_for_everything(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = new_user.headers
    doc = (await h.upload(http, new_user, h.pdf_bytes("mine"), "secret.pdf")).json()["documents"][0][
        "document"
    ]
    cat = (await http.post("/categories", headers=owner, json={"name": "Private"})).json()["id"]
    task = (await http.get("/tasks", headers=owner)).json()["items"][0]["id"]
    other = await register_and_login(http)
    hd = other.headers
    for doc_id in (doc["id"], str(uuid.uuid4())):  # real but foreign, and guessed: the same answer
        responses = [
            await http.get(f"/documents/{doc_id}", headers=hd),
            await http.get(f"/documents/{doc_id}/file", headers=hd),
            await http.patch(f"/documents/{doc_id}", headers=hd, json={"title": "x"}),
            await http.post(f"/documents/{doc_id}/reprocess", headers=hd),
            await http.delete(f"/documents/{doc_id}", headers=hd),
        ]
        assert [r.status_code for r in responses] == [404] * 5
        assert {r.json()["error"]["message"] for r in responses} == {"There is no such document."}
    for cat_id in (cat, str(uuid.uuid4())):
        assert (
            await http.patch(f"/categories/{cat_id}", headers=hd, json={"name": "mine"})
        ).status_code == 404
        assert (await http.delete(f"/categories/{cat_id}", headers=hd)).status_code == 404
    for task_id in (task, str(uuid.uuid4())):
        assert (await http.post(f"/tasks/{task_id}/retry", headers=hd)).status_code == 404
    r = await http.post("/documents/bulk", headers=hd, json={"action": "delete", "ids": [doc["id"]]})
    assert r.json()["results"][0]["code"] == "not_found"
    r = await http.post(
        "/documents/bulk",
        headers=hd,
        json={"action": "assign_category", "category_id": cat, "ids": [doc["id"]]},
    )
    assert r.status_code == 404
    assert (await http.get("/documents", headers=hd)).json() == {
        "items": [],
        "total": 0,
        "total_exact": True,
        "next_cursor": None,
    }
    assert (await http.get("/documents", headers=hd, params={"q": "secret"})).json()["total"] == 0
    assert (await http.get("/documents/counts", headers=hd)).json()["total"] == 0
    assert (await http.get("/categories", headers=hd)).json()["items"] == []
    assert (await http.get("/tasks", headers=hd)).json()["total"] == 0
    assert (await http.get("/tasks", headers=hd, params={"all_users": "true"})).status_code == 403
    # Still all there for the owner.
    assert (await http.get(f"/documents/{doc['id']}", headers=owner)).status_code == 200
    assert (await http.get(f"/documents/{doc['id']}/file", headers=owner)).status_code == 200


async def test_admin_sees_all_tasks(http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser) -> None:
    await h.upload(http, new_user, h.pdf_bytes("t"), "t.pdf")
    r = await http.get("/tasks", headers=new_admin.headers, params={"all_users": "true", "filename": "t.pdf"})
    assert r.status_code == 200
    assert new_user.id in {t["owner_id"] for t in r.json()["items"]}


async def test_user_without_the_grant_gets_403(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    assert (await http.get("/documents", headers=new_user.headers)).status_code == 200
    await call(
        stack.nc,
        REVOKE,
        UserGrantChange(user_id=uuid.UUID(new_user.id), app_key="documents"),
        token=new_admin.access_token,
    )
    hd = new_user.headers
    responses = [
        await http.get("/documents", headers=hd),
        await http.get("/documents/counts", headers=hd),
        await h.upload(http, new_user, h.pdf_bytes("no"), "no.pdf"),
        await http.get(f"/documents/{uuid.uuid4()}", headers=hd),
        await http.get("/categories", headers=hd),
        await http.get("/tasks", headers=hd),
        await http.get("/tasks/stats", headers=hd),
        await http.get("/events", headers=hd),
    ]
    assert [r.status_code for r in responses] == [403] * len(responses)
    # The service refuses on the bus too, whatever a gateway would do.
    for desc, payload in ((DOCUMENT_LIST, {}), (UPLOAD_PREPARE, Empty()), (DOCUMENT_COUNTS, Empty())):
        try:
            await call(stack.nc, desc, payload, token=new_user.access_token)
            raise AssertionError("expected Forbidden")
        except Forbidden as err:
            assert err.details == {"app_key": "documents"}
