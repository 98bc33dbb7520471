"""Issue 13, item 5: re-processing cannot run up a bill.

A user's re-runs are limited per hour (`ATRIUM_REPROCESS_PER_HOUR`): past it, one re-run is a 429 and a
bulk re-run fails item by item, with nothing queued. A re-run marks the run it replaces as superseded
(its task rows say so), and the workers skip such a run: the text worker extracts nothing, the AI worker
asks no model (here a model server that counts its requests).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from nats.js.errors import KeyNotFoundError
from sqlalchemy import func, select

from contracts import Header, RateLimited
from contracts.docs_api import DOCUMENT_REPROCESS
from contracts.documents import (
    DOCUMENT_EXTRACTED,
    DOCUMENT_UPLOADED,
    SUPERSEDED_RUNS_BUCKET,
    DocumentExtracted,
    DocumentUploaded,
    ExtractionResult,
    PageText,
    PdfMetadata,
    result_object_name,
)
from contracts.streams import DOCUMENTS_STREAM
from services.docs.handlers.common import DocsDeps
from services.docs.tables import tasks
from services.kit.client import call
from services.kit.db import Database
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import (
    BUILTIN_DEFAULTS,
    INVOICE_PAGE,
    PipelineWatch,
    set_settings,
    wait_for_provider,
)
from tests.fakes_llm.server import FakeLLM
from tests.integration import docs_helpers as h
from tests.integration.test_documents_previews import processed
from tests.integration.test_permissions import wait_consumed

LIMIT = 3


@pytest.fixture
def small_limit(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(stack.services["docs"].deps_as(DocsDeps), "reprocess_per_hour", LIMIT)
    return LIMIT


@pytest_asyncio.fixture
async def docs_db(stack: Stack) -> AsyncIterator[Database]:
    db = Database(stack.db_urls["docs"], "docs")
    yield db
    await db.dispose()


async def reruns(db: Database, owner: str) -> int:
    async with db.session() as s:
        return int(
            (
                await s.execute(
                    select(func.count()).where(
                        tasks.c.owner_id == owner, tasks.c.kind == "reprocess", tasks.c.stage == "extract"
                    )
                )
            ).scalar_one()
        )


async def test_re_runs_are_limited_per_user_per_hour(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, docs_db: Database, small_limit: int
) -> None:
    made = [await h.create(stack, new_user, f"doc{i}.pdf") for i in range(2)]
    ids = [str(m.document.id) for m in made]
    for i in range(small_limit):
        r = await http.post(f"/documents/{ids[i % 2]}/reprocess", headers=new_user.headers, json={})
        assert r.status_code == 200, r.text
    r = await http.post(f"/documents/{ids[0]}/reprocess", headers=new_user.headers, json={})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    # A bulk re-run with an empty filter (every document) queues nothing more; each item says why.
    r = await http.post(
        "/documents/bulk", headers=new_user.headers, json={"action": "reprocess", "filter": {}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["succeeded"] == 0 and {i["code"] for i in r.json()["results"]} == {"rate_limited"}
    # On the bus as well.
    with pytest.raises(RateLimited):
        await call(stack.nc, DOCUMENT_REPROCESS, {"id": ids[1]}, token=new_user.access_token)
    assert await reruns(docs_db, new_user.id) == small_limit
    # Another user has their own allowance.
    other = await h.register_other(http)
    mine = await h.create(stack, other, "theirs.pdf")
    r = await http.post(f"/documents/{mine.document.id}/reprocess", headers=other.headers, json={})
    assert r.status_code == 200


async def test_a_replaced_run_is_marked_and_its_tasks_say_superseded(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, docs_db: Database
) -> None:
    made = await h.create(stack, new_user, "doc.pdf")
    first = made.document.run_id
    r = await http.post(f"/documents/{made.document.id}/reprocess", headers=new_user.headers, json={})
    assert r.status_code == 200, r.text
    kv = await stack.nc.jetstream().key_value(SUPERSEDED_RUNS_BUCKET)
    assert (await kv.get(str(first))).value == b"superseded"
    async with docs_db.session() as s:
        statuses = set((await s.execute(select(tasks.c.status).where(tasks.c.run_id == first))).scalars())
    assert statuses == {"superseded"}
    # Deleting the document marks its current run too.
    current = uuid.UUID(r.json()["run_id"])
    assert (await http.delete(f"/documents/{made.document.id}", headers=new_user.headers)).status_code == 204
    assert (await kv.get(str(current))).value == b"deleted"


@pytest_asyncio.fixture
async def paid_model(stack: Stack, new_admin: AppUser) -> AsyncIterator[FakeLLM]:
    """The AI worker on a model server that counts its requests; builtin again afterwards."""
    fake = await FakeLLM(api_key="sk-test-cost-0123456789").start()
    token = new_admin.access_token
    await set_settings(
        stack.nc,
        token,
        provider="openai_compatible",
        base_url=fake.base_url + "/v1",
        model="fake-model-1",
        api_key=fake.api_key,
    )
    await wait_for_provider(stack.nc, token, "openai_compatible")
    yield fake
    await set_settings(stack.nc, token, **BUILTIN_DEFAULTS)
    await wait_for_provider(stack.nc, token, "builtin")
    await fake.stop()


async def test_the_workers_skip_a_superseded_run(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, paid_model: FakeLLM
) -> None:
    if not {"extract", "ai"} <= stack.services.keys():
        pytest.skip("needs both workers")
    # A document whose first run is recorded but not yet picked up, then re-run at once.
    made = await h.create(stack, new_user, "invoice_1p.pdf", data=h.INVOICE.read_bytes())
    doc, old, owner = made.document.id, made.document.run_id, uuid.UUID(new_user.id)
    r = await http.post(f"/documents/{doc}/reprocess", headers=new_user.headers, json={})
    assert r.status_code == 200, r.text
    await processed(stack, http, new_user, str(doc))
    asked = len(paid_model.hits("/v1/chat/completions"))
    assert asked == 1  # the current run was analyzed
    # The first run's work arrives late: the text worker would extract it, the AI worker would ask the model
    # (its extraction result is there to be read), but both skip it.
    now = datetime.now(UTC)
    result = ExtractionResult(
        document_id=doc,
        run_id=old,
        page_count=1,
        pages=[PageText(number=1, text=INVOICE_PAGE)],
        metadata=PdfMetadata(),
        engine="test",
    )
    await (await h.store(stack)).put(result_object_name(doc, old), result.model_dump_json().encode())
    uploaded = DocumentUploaded(
        document_id=doc,
        owner_id=owner,
        run_id=old,
        filename=made.document.filename,
        size=1,
        sha256="0" * 64,
        object_name=str(doc),
        uploaded_at=now,
    )
    extracted = DocumentExtracted(
        document_id=doc,
        owner_id=owner,
        run_id=old,
        page_count=1,
        needs_ocr=False,
        chars=len(INVOICE_PAGE),
        table_count=0,
        metadata=PdfMetadata(),
        result_object=result_object_name(doc, old),
        engine="test",
        worker="test",
        attempt=1,
        started_at=now,
        finished_at=now,
    )
    js = stack.nc.jetstream()
    async with PipelineWatch(stack.nc) as watch:
        for desc, event, durable in (
            (DOCUMENT_UPLOADED, uploaded, "extract"),
            (DOCUMENT_EXTRACTED, extracted, "ai-analyze"),
        ):
            ack = await js.publish(
                desc.subject,
                event.model_dump_json().encode(),
                headers={Header.MSG_ID: f"late:{desc.subject}:{old}"},
            )
            await wait_consumed(stack, DOCUMENTS_STREAM.name, durable, ack.seq)  # handled and acked
    assert [e for e in watch.processing(doc) if e.run_id == old] == []
    assert len(paid_model.hits("/v1/chat/completions")) == asked  # no model was asked
    claims = await js.key_value("extract_runs")
    with pytest.raises(KeyNotFoundError):  # the text worker did not even claim it
        await claims.get(str(old))
