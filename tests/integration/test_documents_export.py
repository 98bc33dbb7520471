"""`GET /documents/export`: one zip with everything of the caller's, matching the database and the stored
files byte for byte, and nothing of anyone else's."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.docs.handlers import export
from services.docs.tables import documents, pages
from services.kit.db import Database
from tests.conftest import CORPUS, AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h
from tests.integration.test_documents_pipeline import wait_for_status

FILES = [CORPUS / "synthetic" / n for n in ("invoice_1p.pdf", "letter_10p.pdf")]
DONE = {"ready", "failed", "needs_ocr", "analyzing"}


async def export_zip(http: httpx.AsyncClient, user: AppUser) -> zipfile.ZipFile:
    r = await http.get("/documents/export", headers=user.headers, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="atrium-export-')
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None
    return z


async def rows_of(stack: Stack, owner: str) -> dict[str, Any]:
    db = Database(stack.db_urls["docs"], "docs")
    try:
        async with db.session() as s:
            docs = (await s.execute(select(documents).where(documents.c.owner_id == owner))).all()
            page_rows = (
                await s.execute(
                    select(pages.c.document_id, pages.c.number, pages.c.text, pages.c.tables)
                    .where(pages.c.document_id.in_([d.id for d in docs]))
                    .order_by(pages.c.document_id, pages.c.number)
                )
            ).all()
    finally:
        await db.dispose()
    by_doc: dict[str, list[dict[str, Any]]] = {str(d.id): [] for d in docs}
    for p in page_rows:
        by_doc[str(p.document_id)].append({"number": p.number, "text": p.text, "tables": p.tables})
    return {str(d.id): (d, by_doc[str(d.id)]) for d in docs}


async def test_the_export_holds_everything_of_mine_and_nothing_else(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker")
    other = await register_and_login(http)
    theirs = await h.upload(http, other, FILES[0], "someone-elses.pdf")
    assert theirs.status_code == 201, theirs.text
    ids = []
    for path in FILES:
        r = await h.upload(http, new_user, path, path.name)
        assert r.status_code == 201, r.text
        ids.append(r.json()["documents"][0]["document"]["id"])
    for doc_id in ids:
        await wait_for_status(http, new_user, doc_id, DONE)
    r = await http.post("/categories", headers=new_user.headers, json={"name": "Export me"})
    category = r.json()
    r = await http.post(
        "/documents/bulk",
        headers=new_user.headers,
        json={"action": "assign_category", "ids": [ids[0]], "category_id": category["id"]},
    )
    assert r.status_code == 200, r.text
    r = await http.patch(
        f"/documents/{ids[1]}", headers=new_user.headers, json={"fields": {"sender": "By hand"}}
    )
    assert r.status_code == 200, r.text
    # Pages come in chunks of one page here, so a long document's pages.json is made of many answers.
    monkeypatch.setattr(export, "PAGES_CHUNK_CHARS", 1)

    z = await export_zip(http, new_user)
    names = set(z.namelist())
    db = await rows_of(stack, new_user.id)
    assert set(db) == set(ids)
    expected = {"export.json", "categories.json"}
    for doc_id, (row, _) in db.items():
        expected |= {f"documents/{doc_id}/document.json", f"documents/{doc_id}/pages.json"}
        expected.add(f"documents/{doc_id}/{row.filename}")
    assert names == expected

    summary = json.loads(z.read("export.json"))
    assert summary["documents"] == 2 and summary["user"]["id"] == new_user.id
    categories = (await http.get("/categories", headers=new_user.headers)).json()["items"]
    assert json.loads(z.read("categories.json")) == categories

    for doc_id, (row, page_list) in db.items():
        original = z.read(f"documents/{doc_id}/{row.filename}")
        assert original == next(p for p in FILES if p.name == row.filename).read_bytes()
        assert hashlib.sha256(original).hexdigest() == row.sha256
        assert json.loads(z.read(f"documents/{doc_id}/pages.json")) == page_list
        assert len(page_list) == row.page_count
        meta = json.loads(z.read(f"documents/{doc_id}/document.json"))
        assert meta["original"] == {"file": row.filename, "size": row.size, "sha256": row.sha256}
        assert (
            meta["status"] == row.status and meta["title"] == row.title and meta["run_id"] == str(row.run_id)
        )
        assert meta["sender"] == row.sender and meta["document_type"] == row.document_type
        detail = (await http.get(f"/documents/{doc_id}", headers=new_user.headers)).json()
        for key in ("categories", "tasks", "fields", "metadata", "pending_suggestions", "document_date"):
            assert meta[key] == detail[key], key
    assert json.loads(z.read(f"documents/{ids[0]}/document.json"))["categories"][0]["id"] == category["id"]
    assert json.loads(z.read(f"documents/{ids[1]}/document.json"))["fields"]["sender"]["source"] == "user"

    # Someone else's export has only theirs; mine never shows up in it.
    z_other = await export_zip(http, other)
    assert not [n for n in z_other.namelist() if any(i in n for i in ids)]
    assert json.loads(z_other.read("export.json"))["documents"] == 1


async def test_an_empty_export_and_the_refusals(http: httpx.AsyncClient, new_user: AppUser) -> None:
    z = await export_zip(http, new_user)
    assert set(z.namelist()) == {"export.json", "categories.json"}
    assert json.loads(z.read("export.json"))["documents"] == 0
    http.cookies.clear()  # signed in by the cookies of the login otherwise
    r = await http.get("/documents/export")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
