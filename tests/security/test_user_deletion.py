"""Issue 13, item 10: deleting a user deletes their data.

An administrator deletes an account over HTTP; auth announces `events.auth.user_deleted` through its
outbox, and the documents service removes every document of that user with every stored file of every
run (original, extraction result, page previews), their text (pages), categories and task history.
Checked in the database and in the Object Store; another user's documents are untouched. A repeated
event (a redelivery) finds nothing more to do.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest
from nats.js.errors import ObjectNotFoundError
from sqlalchemy import func, select

from contracts.auth import UserDeleted
from contracts.documents import preview_object_name, result_object_name
from services.docs.handlers import housekeeping
from services.docs.handlers.common import DocsDeps
from services.docs.tables import categories, document_categories, documents, pages, tasks
from services.kit.db import Database
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h
from tests.integration.test_documents_previews import processed, upload_invoice


@pytest.fixture
async def docs_db(stack: Stack):  # type: ignore[no-untyped-def]
    db = Database(stack.db_urls["docs"], "docs")
    yield db
    await db.dispose()


async def owned_rows(db: Database, owner: str) -> dict[str, int]:
    async with db.session() as s:
        doc_ids = select(documents.c.id).where(documents.c.owner_id == owner).scalar_subquery()
        cat_ids = select(categories.c.id).where(categories.c.owner_id == owner).scalar_subquery()
        counts = {
            "documents": select(func.count()).where(documents.c.owner_id == owner),
            "pages": select(func.count()).select_from(pages).where(pages.c.document_id.in_(doc_ids)),
            "categories": select(func.count()).where(categories.c.owner_id == owner),
            "document_categories": select(func.count())
            .select_from(document_categories)
            .where(document_categories.c.category_id.in_(cat_ids)),
            "tasks": select(func.count()).where(tasks.c.owner_id == owner),
        }
        return {name: (await s.execute(q)).scalar_one() for name, q in counts.items()}


async def test_deleting_a_user_removes_their_documents_files_and_history(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, docs_db: Database
) -> None:
    victim = await register_and_login(http)
    bystander = await register_and_login(http)
    doc_id = await upload_invoice(stack, http, victim)
    body = await processed(stack, http, victim, doc_id)
    run = UUID(body["run_id"])
    assert (await http.get(f"/documents/{doc_id}/pages/1/preview", headers=victim.headers)).status_code == 200
    cat = await http.post("/categories", json={"name": "Taxes"}, headers=victim.headers)
    assert cat.status_code == 201, cat.text
    r = await http.post(
        "/documents/bulk",
        json={"action": "assign_category", "ids": [doc_id], "category_id": cat.json()["id"]},
        headers=victim.headers,
    )
    assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text
    kept = await upload_invoice(stack, http, bystander)
    await processed(stack, http, bystander, kept)

    store = await h.store(stack)
    names = [doc_id, result_object_name(UUID(doc_id), run), preview_object_name(UUID(doc_id), run, 1)]
    for name in names:
        assert (await store.get_info(name)).size > 0
    before = await owned_rows(docs_db, victim.id)
    assert all(before.values()), before  # every kind of row is there to be deleted

    r = await http.delete(f"/admin/users/{victim.id}", headers=new_admin.headers)
    assert r.status_code == 200, r.text

    for _ in range(300):  # the event goes through auth's outbox and the documents service's consumer
        if not any((await owned_rows(docs_db, victim.id)).values()):
            break
        await asyncio.sleep(0.2)
    assert await owned_rows(docs_db, victim.id) == dict.fromkeys(before, 0)
    for name in names:
        with pytest.raises(ObjectNotFoundError):
            await store.get_info(name)
    # Another user's documents are untouched.
    r = await http.get(f"/documents/{kept}", headers=bystander.headers)
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert (await store.get_info(kept)).size > 0
    # A redelivered event finds nothing more to do, and does not fail.
    deleted = UserDeleted(user_id=UUID(victim.id), deleted_at=datetime.now(UTC))
    await housekeeping.forget_user(deleted, h.ctx(), stack.services["docs"].deps_as(DocsDeps))
