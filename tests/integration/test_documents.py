"""Documents over real HTTP, NATS (Object Store, JetStream) and Postgres: upload, browse, edit, delete."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import date

import httpx
import pytest
from nats.js.errors import ObjectNotFoundError

from contracts import Conflict, TooLarge
from contracts.docs_api import DocumentRef
from services.docs.handlers import housekeeping, pipeline, runs
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h


async def test_upload_get_download_delete(stack: Stack, http: httpx.AsyncClient, new_user: AppUser) -> None:
    original = h.INVOICE.read_bytes()
    r = await h.upload(http, new_user, original, "../../etc/My Invoice\u202e.pdf")
    assert r.status_code == 201, r.text
    doc = r.json()["documents"][0]["document"]
    assert doc["size"] == len(original) and doc["sha256"] == hashlib.sha256(original).hexdigest()
    assert doc["filename"] == "My Invoice.pdf" and doc["status"] in (
        "queued",
        "extracting",
        "analyzing",
        "ready",
    )

    r = await http.get(f"/documents/{doc['id']}", headers=new_user.headers)
    assert r.status_code == 200 and r.json()["tasks"][0]["kind"] == "extract"
    listed = (await http.get("/documents", headers=new_user.headers)).json()
    assert [d["id"] for d in listed["items"]] == [doc["id"]] and listed["total"] == 1

    r = await http.get(f"/documents/{doc['id']}/file", headers=new_user.headers)
    assert r.status_code == 200 and r.content == original
    assert r.headers["content-type"] == "application/pdf"
    assert 'filename="My Invoice.pdf"' in r.headers["content-disposition"]

    r = await http.delete(f"/documents/{doc['id']}", headers=new_user.headers)
    assert r.status_code == 204
    assert (await http.get(f"/documents/{doc['id']}", headers=new_user.headers)).status_code == 404
    assert (await http.get(f"/documents/{doc['id']}/file", headers=new_user.headers)).status_code == 404
    with pytest.raises(ObjectNotFoundError):
        await (await h.store(stack)).get_info(doc["id"])


async def test_content_is_checked_not_the_name(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await h.upload(http, new_user, b"MZ\x90\x00 this is not a pdf at all" * 100, "invoice.pdf")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported"
    r = await h.upload(http, new_user, b"", "empty.pdf")
    assert r.status_code == 415
    # A valid PDF may carry bytes before its header (see the corpus README).
    r = await h.upload(http, new_user, h.LEADING_BYTES, "leading.txt", content_type="text/plain")
    assert r.status_code == 201, r.text
    r = await http.post("/documents", headers=new_user.headers, json={"file": "x"})
    assert r.status_code == 422


async def test_many_files_in_one_request(http: httpx.AsyncClient, new_user: AppUser) -> None:
    files = [
        ("file", ("a.pdf", h.pdf_bytes("a"), "application/pdf")),
        ("file", ("b.pdf", h.pdf_bytes("b"), "application/pdf")),
    ]
    r = await http.post("/documents", headers=new_user.headers, files=files)
    assert r.status_code == 201, r.text
    assert sorted(d["document"]["filename"] for d in r.json()["documents"]) == ["a.pdf", "b.pdf"]


async def test_duplicates_marked_or_rejected(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    data = h.pdf_bytes("dup")
    first = await h.create(stack, new_user, "first.pdf", data, duplicate_policy="mark")
    second = await h.create(stack, new_user, "second.pdf", data, duplicate_policy="mark")
    assert first.duplicate is False and second.duplicate is True
    assert second.document.duplicate_of == first.document.id
    with pytest.raises(Conflict) as err:
        await h.create(stack, new_user, "third.pdf", data, duplicate_policy="reject")
    assert err.value.details["existing_document_id"] == str(first.document.id)
    assert "first.pdf" in err.value.message
    r = await http.get("/documents", params={"duplicate": "true"}, headers=new_user.headers)
    assert [d["id"] for d in r.json()["items"]] == [str(second.document.id)]
    # Another user's identical file is not a duplicate of mine.
    other = await register_and_login(http)
    assert (await h.create(stack, other, "mine.pdf", data, duplicate_policy="reject")).duplicate is False


async def test_quotas_name_the_limit(stack: Stack, new_user: AppUser) -> None:
    await h.create(stack, new_user, "one.pdf", quota_documents_per_user=1)
    with pytest.raises(Conflict) as err:
        await h.create(stack, new_user, "two.pdf", quota_documents_per_user=1)
    assert err.value.details["limit"] == "quota_documents_per_user"
    with pytest.raises(TooLarge) as big:
        await h.create(
            stack, new_user, "big.pdf", b"%PDF-" + b"x" * (2 * 1024 * 1024), quota_storage_mb_per_user=1
        )
    assert big.value.details["limit"] == "quota_storage_mb_per_user"


async def test_413_arrives_before_the_body_is_sent(stack: Stack, new_user: AppUser) -> None:
    """A chunked upload larger than the limit gets its 413 while the client still holds back the rest."""
    limit = 50 * 1024 * 1024  # the default max_upload_mb
    host, port = stack.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    boundary = "b" + uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    writer.write(
        (
            f"POST /api/v1/documents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
            f"{new_user.access_token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    writer.write(chunk(head + b"%PDF-1.7\n"))
    block = b"0" * (1024 * 1024)
    sent = 0
    while sent <= limit + len(block):
        writer.write(chunk(block))
        await writer.drain()
        sent += len(block)
    # The closing boundary and the last chunk are never sent: the answer must come anyway.
    status_line = await asyncio.wait_for(reader.readline(), 30)
    assert b" 413 " in status_line, status_line
    rest = await asyncio.wait_for(reader.read(65536), 10)
    assert b"max_upload_mb" in rest
    writer.close()


async def test_edit_fields_survive_reanalysis(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = uuid.UUID(new_user.id)
    res = await h.create(stack, new_user, "inv.pdf")
    d = res.document
    await h.extracted(stack, d.id, owner, d.run_id, ["Invoice 42 from ACME"])
    await h.analyzed(
        stack, d.id, owner, d.run_id, sender="ACME GmbH", invoice_number="42", document_type="invoice"
    )
    r = await http.patch(
        f"/documents/{d.id}",
        headers=new_user.headers,
        json={"title": "My title", "fields": {"sender": "ACME Corp"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["fields"]["sender"] == {
        "value": "ACME Corp",
        "source": "user",
        "provider": None,
        "model": None,
        "task_id": None,
        "updated_at": r.json()["fields"]["sender"]["updated_at"],
    }
    a = await h.actor(stack, new_user)
    run = (await runs.reprocess_document(DocumentRef(id=d.id), h.ctx(a), h.deps(stack))).run_id
    await h.extracted(stack, d.id, owner, run, ["Invoice 43 from ACME"])
    await h.analyzed(stack, d.id, owner, run, sender="Someone Else", invoice_number="43", title="Model title")
    body = (await http.get(f"/documents/{d.id}", headers=new_user.headers)).json()
    assert body["status"] == "ready"
    assert body["sender"] == "ACME Corp" and body["fields"]["sender"]["source"] == "user"
    assert body["title"] == "My title"
    assert body["fields"]["invoice_number"]["value"] == "43"
    assert body["fields"]["invoice_number"]["model"] == "rules-v1"
    assert "document_type" not in body["fields"]  # the new run did not say it: the old model answer is gone
    kinds = sorted((t["kind"], t["status"]) for t in body["tasks"])
    assert kinds == [
        ("analyze", "succeeded"),
        ("analyze", "succeeded"),
        ("extract", "succeeded"),
        ("reprocess", "succeeded"),
    ]


async def test_stale_run_events_do_not_override(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = uuid.UUID(new_user.id)
    d = (await h.create(stack, new_user, "stale.pdf")).document
    a = await h.actor(stack, new_user)
    newer = await runs.reprocess_document(DocumentRef(id=d.id), h.ctx(a), h.deps(stack))
    await h.extracted(stack, d.id, owner, d.run_id, ["old run text"])
    body = (await http.get(f"/documents/{d.id}", headers=new_user.headers)).json()
    assert body["status"] == "queued" and body["pages"] == [] and body["run_id"] == str(newer.run_id)
    old_task = next(t for t in body["tasks"] if t["run_id"] == str(d.run_id))
    assert old_task["status"] == "succeeded"  # recorded in history, no effect on the document


async def test_categories_and_bulk(stack: Stack, http: httpx.AsyncClient, new_user: AppUser) -> None:
    hd = new_user.headers
    r = await http.post("/categories", headers=hd, json={"name": "Taxes"})
    assert r.status_code == 201
    cat = r.json()["id"]
    assert (await http.post("/categories", headers=hd, json={"name": "  tAXES "})).status_code == 409
    ids = [str((await h.create(stack, new_user, f"b{i}.pdf")).document.id) for i in range(3)]
    r = await http.post(
        "/documents/bulk",
        headers=hd,
        json={"action": "assign_category", "category_id": cat, "ids": ids + [str(uuid.uuid4())]},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["succeeded"] == 3 and body["failed"] == 1 and body["results"][-1]["code"] == "not_found"
    cats = (await http.get("/categories", headers=hd)).json()["items"]
    assert [(c["name"], c["document_count"]) for c in cats] == [("Taxes", 3)]
    r = await http.get("/documents", headers=hd, params={"category_any": cat})
    assert sorted(d["id"] for d in r.json()["items"]) == sorted(ids)
    r = await http.post(
        "/documents/bulk", headers=hd, json={"action": "remove_category", "category_id": cat, "ids": ids[:1]}
    )
    assert r.json()["succeeded"] == 1
    r = await http.patch(f"/categories/{cat}", headers=hd, json={"name": "Tax 2026"})
    assert r.status_code == 200 and r.json()["document_count"] == 2
    r = await http.post(
        "/documents/bulk", headers=hd, json={"action": "delete", "filter": {"category_any": [cat]}}
    )
    assert r.json()["succeeded"] == 2
    assert (await http.get("/documents", headers=hd)).json()["total"] == 1
    assert (await http.delete(f"/categories/{cat}", headers=hd)).status_code == 204


async def test_ai_categories_match_existing_case_insensitively(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    await http.post("/categories", headers=new_user.headers, json={"name": "Insurance"})
    doc = await h.ready_document(stack, new_user, "ins.pdf", "policy", categories=["insurance", "Brand New"])
    body = (await http.get(f"/documents/{doc}", headers=new_user.headers)).json()
    assert [(c["name"], c["source"]) for c in body["categories"]] == [("Insurance", "ai")]
    names = [c["name"] for c in (await http.get("/categories", headers=new_user.headers)).json()["items"]]
    assert names == ["Insurance"]  # ai_may_create_categories is off by default
    d = (await h.create(stack, new_user, "car.pdf")).document
    await h.analyzed(
        stack,
        d.id,
        uuid.UUID(new_user.id),
        d.run_id,
        settings={"ai_may_create_categories": True},
        suggested_categories=["INSURANCE", "Car"],
    )
    body = (await http.get(f"/documents/{d.id}", headers=new_user.headers)).json()
    assert sorted(c["name"] for c in body["categories"]) == ["Car", "Insurance"]
    names = [c["name"] for c in (await http.get("/categories", headers=new_user.headers)).json()["items"]]
    assert names == ["Car", "Insurance"]


async def test_tasks_history_stats_export_retry(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    from datetime import UTC, datetime

    from contracts.documents import DocumentFailed

    owner = uuid.UUID(new_user.id)
    ok = await h.ready_document(stack, new_user, "good.pdf", "fine")
    bad = (await h.create(stack, new_user, "bad.pdf")).document
    await pipeline.on_failed(
        DocumentFailed(
            document_id=bad.id,
            owner_id=owner,
            run_id=bad.run_id,
            stage="extract",
            reason="unreadable",
            message="xref broken",
            attempt=3,
            final=True,
            finished_at=datetime.now(UTC),
        ),
        h.ctx(),
        h.deps(stack),
    )
    hd = new_user.headers
    doc = (await http.get(f"/documents/{bad.id}", headers=hd)).json()
    assert doc["status"] == "failed" and doc["failure_reason"] == "unreadable"
    r = await http.get("/tasks", headers=hd, params={"status": "failed"})
    failed = r.json()["items"]
    assert [t["filename"] for t in failed] == ["bad.pdf"] and failed[0]["error"] == "xref broken"
    r = await http.get("/tasks", headers=hd, params={"filename": "good"})
    assert {t["kind"] for t in r.json()["items"]} == {"extract", "analyze"}
    stats = (await http.get("/tasks/stats", headers=hd)).json()
    assert stats["by_status"] == {"succeeded": 2, "failed": 1} and stats["by_kind"] == {
        "extract": 2,
        "analyze": 1,
    }
    assert stats["by_provider"][0]["provider"] == "builtin" and stats["by_provider"][0]["tokens_in"] == 10
    csv_text = (await http.get("/tasks/export", headers=hd, params={"format": "csv"})).text
    assert csv_text.splitlines()[0].startswith("id,document_id,filename") and len(csv_text.splitlines()) == 4
    rows = (await http.get("/tasks/export", headers=hd, params={"format": "json"})).json()
    assert len(rows) == 3
    r = await http.post(f"/tasks/{failed[0]['id']}/retry", headers=hd)
    assert r.status_code == 200 and r.json()["kind"] == "reprocess" and r.json()["document_id"] == str(bad.id)
    assert (await http.post(f"/tasks/{failed[0]['id']}/retry", headers=hd)).status_code == 409
    assert (await http.get(f"/documents/{bad.id}", headers=hd)).json()["run_id"] == r.json()["run_id"]
    assert ok


async def test_dates_and_numbers_roundtrip(stack: Stack, http: httpx.AsyncClient, new_user: AppUser) -> None:
    doc = await h.ready_document(stack, new_user, "d.pdf", "x", document_date=date(2024, 2, 29))
    r = await http.patch(
        f"/documents/{doc}", headers=new_user.headers, json={"fields": {"total_amount": "12.50"}}
    )
    assert (
        r.status_code == 200
        and r.json()["total_amount"] == "12.50"
        and r.json()["document_date"] == "2024-02-29"
    )
    r = await http.patch(f"/documents/{doc}", headers=new_user.headers, json={"fields": {"role": "admin"}})
    assert r.status_code == 422


async def test_task_retention_removes_only_old_finished_tasks(stack: Stack, new_user: AppUser) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from services.docs.tables import tasks

    doc = await h.ready_document(stack, new_user, "old.pdf", "x")
    async with h.owner_session(stack, new_user, write=True) as s:
        await s.execute(
            update(tasks)
            .where(tasks.c.document_id == doc, tasks.c.stage == "extract")
            .values(created_at=datetime.now(UTC) - timedelta(days=40))
        )
    assert await housekeeping.apply_retention(h.deps(stack, task_retention_days=30)) >= 1
    async with h.owner_session(stack, new_user) as s:
        left = (await s.execute(select(tasks.c.stage).where(tasks.c.document_id == doc))).scalars().all()
    assert left == ["analyze"]


async def test_analysis_recorded_before_extraction_keeps_both(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    """Two consumers: the AI worker's event may be applied before the text worker's."""
    owner = uuid.UUID(new_user.id)
    d = (await h.create(stack, new_user, "race.pdf")).document
    await h.analyzed(stack, d.id, owner, d.run_id, sender="Early Bird")
    await h.extracted(stack, d.id, owner, d.run_id, ["late text"])
    body = (await http.get(f"/documents/{d.id}", headers=new_user.headers)).json()
    assert body["status"] == "ready" and body["sender"] == "Early Bird"
    assert body["page_count"] == 1 and body["pages"][0]["text"] == "late text"
