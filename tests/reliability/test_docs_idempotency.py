"""Events delivered twice change nothing twice: one upload message, one extraction, one task."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from contracts import Header
from contracts.documents import DOCUMENT_EXTRACTED, DOCUMENT_UPLOADED, DocumentExtracted, DocumentUploaded
from contracts.streams import DOCUMENTS_STREAM
from services.docs.tables import pages, tasks
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h


async def drained(stack: Stack, durable: str) -> None:
    js = stack.nc.jetstream()
    for _ in range(200):
        info = await js.consumer_info(DOCUMENTS_STREAM.name, durable)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{durable} did not drain")


async def test_same_upload_event_twice_is_stored_once(stack: Stack, new_user: AppUser) -> None:
    js = stack.nc.jetstream()
    doc, run = uuid.uuid4(), uuid.uuid4()
    event = DocumentUploaded(
        document_id=doc,
        owner_id=uuid.UUID(new_user.id),
        run_id=run,
        filename="x.pdf",
        size=1,
        sha256="0" * 64,
        object_name=str(doc),
        uploaded_at=datetime.now(UTC),
    )
    acks = [
        await js.publish(
            DOCUMENT_UPLOADED.subject,
            event.model_dump_json().encode(),
            headers={Header.MSG_ID: f"{doc}:{run}"},
        )
        for _ in range(2)
    ]
    assert acks[0].duplicate is not True and acks[1].duplicate is True and acks[0].seq == acks[1].seq


async def test_extracted_event_redelivered_records_one_extraction(stack: Stack, new_user: AppUser) -> None:
    owner = uuid.UUID(new_user.id)
    d = (await h.create(stack, new_user, "twice.pdf")).document
    ev: DocumentExtracted = await h.extracted(stack, d.id, owner, d.run_id, ["page one", "page two"])
    await h.analyzed(stack, d.id, owner, d.run_id, sender="Once")
    db = h.deps(stack).db
    async with db.session() as s:
        before = (
            await s.execute(
                select(tasks.c.finished_at, tasks.c.worker).where(
                    tasks.c.run_id == d.run_id, tasks.c.stage == "extract"
                )
            )
        ).one()
    js = stack.nc.jetstream()
    # The same fact again, as a redelivery after a lost ack would bring it (a new message id, so the
    # stream keeps it and the consumer really sees it twice).
    for _ in range(2):
        late = ev.model_copy(update={"worker": "another-worker", "finished_at": datetime.now(UTC)})
        await js.publish(
            DOCUMENT_EXTRACTED.subject,
            late.model_dump_json().encode(),
            headers={Header.MSG_ID: uuid.uuid4().hex},
        )
    await drained(stack, "docs-extracted")
    async with db.session() as s:
        after = (
            await s.execute(
                select(tasks.c.finished_at, tasks.c.worker).where(
                    tasks.c.run_id == d.run_id, tasks.c.stage == "extract"
                )
            )
        ).one()
        n_tasks = (
            await s.execute(
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.run_id == d.run_id, tasks.c.stage == "extract")
            )
        ).scalar_one()
        n_pages = (
            await s.execute(select(func.count()).select_from(pages).where(pages.c.document_id == d.id))
        ).scalar_one()
    assert (n_tasks, n_pages) == (1, 2)
    assert tuple(after) == tuple(before)  # the first delivery's record stands
    doc = await h.get(stack, new_user, d.id)
    assert doc.status == "ready" and doc.sender == "Once"  # not sent back to "analyzing"


@pytest.mark.parametrize("analysis_first", [True, False])
@pytest.mark.parametrize(("needs_ocr", "final"), [(True, "needs_ocr"), (False, "ready")])
async def test_a_run_ends_in_one_state_whichever_event_is_recorded_first(
    stack: Stack, new_user: AppUser, analysis_first: bool, needs_ocr: bool, final: str
) -> None:
    """The AI worker reads the extraction from the stream, so its answer may be recorded before the
    extraction. Seen with compose on a busy host: a scanned run then showed `ready` without text, and
    only later `needs_ocr`."""
    d = (await h.create(stack, new_user, "scan.pdf")).document
    owner = uuid.UUID(new_user.id)
    text = "" if needs_ocr else "some text"
    steps = [
        lambda: h.analyzed(stack, d.id, owner, d.run_id),
        lambda: h.extracted(stack, d.id, owner, d.run_id, [text], needs_ocr=needs_ocr),
    ]
    if analysis_first:
        await steps[0]()
        assert (await h.get(stack, new_user, d.id)).status not in ("ready", "needs_ocr")
        await steps[1]()
    else:
        await steps[1]()
        await steps[0]()
    doc = await h.get(stack, new_user, d.id)
    assert (doc.status, doc.needs_ocr) == (final, needs_ocr)
