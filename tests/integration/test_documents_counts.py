"""`GET /documents/counts` (`docs.document.counts`): the caller's documents per status, every status
present, from real Postgres through real NATS and the gateway."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import get_args

import httpx
import pytest

from contracts import Empty, Unauthenticated
from contracts.docs_api import DOCUMENT_COUNTS
from contracts.documents import DocumentFailed, DocumentProcessing, DocumentStatus
from services.docs.handlers import pipeline
from services.kit.client import call
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h

ALL_STATUSES = list(get_args(DocumentStatus))


@pytest.fixture(autouse=True)
def needs_docs(stack: Stack) -> None:
    if "docs" not in stack.services:
        pytest.skip("needs the docs service")


async def test_a_new_user_has_every_status_at_zero(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await http.get("/documents/counts", headers=new_user.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 0, "by_status": dict.fromkeys(ALL_STATUSES, 0)}
    assert list(r.json()["by_status"]) == ALL_STATUSES


async def test_counts_are_the_callers_documents_per_status(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = uuid.UUID(new_user.id)
    now = datetime.now(UTC)
    await h.ready_document(stack, new_user, "ready-1.pdf", "one")
    await h.ready_document(stack, new_user, "ready-2.pdf", "two")
    await h.create(stack, new_user, "queued.pdf")
    scan = (await h.create(stack, new_user, "scan.pdf")).document
    await h.extracted(stack, scan.id, owner, scan.run_id, [""], needs_ocr=True)
    started = (await h.create(stack, new_user, "started.pdf")).document
    processing = DocumentProcessing(
        document_id=started.id,
        owner_id=owner,
        run_id=started.run_id,
        stage="extract",
        attempt=1,
        worker="test-worker",
        started_at=now,
    )
    await pipeline.on_processing(processing, h.ctx(), h.deps(stack))
    broken = (await h.create(stack, new_user, "broken.pdf")).document
    failed = DocumentFailed(
        document_id=broken.id,
        owner_id=owner,
        run_id=broken.run_id,
        stage="extract",
        reason="unreadable",
        message="xref broken",
        attempt=1,
        final=True,
        finished_at=now,
    )
    await pipeline.on_failed(failed, h.ctx(), h.deps(stack))
    other = await register_and_login(http)
    await h.create(stack, other, "not-mine.pdf")

    body = (await http.get("/documents/counts", headers=new_user.headers)).json()
    expected = {
        "queued": 1,
        "extracting": 1,
        "ocr": 0,
        "analyzing": 0,
        "ready": 2,
        "needs_ocr": 1,
        "failed": 1,
    }
    assert body == {"total": 6, "by_status": expected}
    # The same numbers as the list's filtered totals.
    for status, n in expected.items():
        page = (await http.get("/documents", headers=new_user.headers, params={"status": status})).json()
        assert page["total"] == n, status
    other_body = (await http.get("/documents/counts", headers=other.headers)).json()
    assert other_body == {"total": 1, "by_status": {**dict.fromkeys(ALL_STATUSES, 0), "queued": 1}}


async def test_counts_need_a_signed_in_caller(stack: Stack, http: httpx.AsyncClient) -> None:
    r = await http.get("/documents/counts")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    with pytest.raises(Unauthenticated):  # refused by the service itself, not only by the gateway
        await call(stack.nc, DOCUMENT_COUNTS, Empty())
