"""Issue 16: a whole uploaded file no document records (the gateway died after storing it, before asking for
its document) is swept after the grace period — never a file a document records, never one whose document
is being created (`housekeeping.sweep_orphan_uploads`, `uploads.create_document`'s upload lock). The real
gateway kill is tests/reliability/test_faults.py::test_gateway_killed_mid_upload."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js import api
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_META_PRE_TEMPLATE

from contracts import NotFound
from contracts.docs_api import CreateDocument
from services.docs.access import as_system
from services.docs.handlers import housekeeping, uploads
from services.docs.handlers.common import Blobs, StoredUpload, UploadSweep
from services.docs.tables import documents
from services.kit.objects import MSG_ROLLUP_SUBJECT
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h

GRACE_S = 3600.0  # production's ATRIUM_UPLOAD_ABANDONED_AFTER_S: other tests' fresh files are never swept


async def _stored_long_ago(stack: Stack, name: uuid.UUID) -> None:
    """The file's meta entry rewritten with a time two grace periods ago (as if stored then)."""
    store = await h.store(stack)
    info = await store.get_info(str(name))
    info.mtime = (datetime.now(UTC) - timedelta(seconds=2 * GRACE_S)).isoformat()
    subject = OBJ_META_PRE_TEMPLATE.format(
        bucket=store._name, obj=base64.urlsafe_b64encode(str(name).encode()).decode()
    )
    await store._js.publish(
        subject, json.dumps(info.as_dict()).encode(), headers={api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}
    )


async def _old_orphan(stack: Stack, data: bytes = b"%PDF-1.4\n%%EOF\n") -> uuid.UUID:
    name = await h.put_blob(stack, data)
    await _stored_long_ago(stack, name)
    return name


async def _exists(stack: Stack, name: uuid.UUID) -> bool:
    try:
        await (await h.store(stack)).get_info(str(name))
    except (ObjectNotFoundError, NotFoundError):
        return False
    return True


async def _create(stack: Stack, user: AppUser, name: uuid.UUID) -> Any:
    cmd = CreateDocument(object_name=name, filename=f"{name}.pdf")
    return await uploads.create_document(cmd, h.ctx(await h.actor(stack, user)), h.deps(stack))


async def _recorded(stack: Stack, name: uuid.UUID) -> bool:
    async with as_system(h.deps(stack).db, "retention", write=False) as s:
        row = await s.execute(documents.select().where(documents.c.object_name == str(name)))
        return row.first() is not None


async def test_an_old_unrecorded_upload_is_swept_and_nothing_else(stack: Stack, new_user: AppUser) -> None:
    deps = h.deps(stack)
    orphan = await _old_orphan(stack)
    fresh = await h.put_blob(stack, b"%PDF-1.4\n%%EOF\n")  # stored just now: its create may be on its way
    recorded = (await h.create(stack, new_user, "kept.pdf")).document.id
    await _stored_long_ago(stack, recorded)
    assert await _exists(stack, orphan)

    assert await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S) >= 1
    assert not await _exists(stack, orphan)
    assert await _exists(stack, fresh)
    assert await _exists(stack, recorded)
    assert await deps.blobs.read(str(recorded))  # the document's file intact
    # Its document asked for after the sweep: a clear error, nothing recorded.
    with pytest.raises(NotFound, match="upload it again"):
        await _create(stack, new_user, orphan)
    assert not await _recorded(stack, orphan)
    # The loop's sweep (cut-off chunks and whole files) counts them too.
    again = await _old_orphan(stack)
    assert await housekeeping.sweep_cut_off_uploads(deps, older_than_s=GRACE_S) >= 1
    assert not await _exists(stack, again)


async def test_a_file_whose_document_is_being_created_is_not_swept(stack: Stack, new_user: AppUser) -> None:
    deps = h.deps(stack)
    name = await _old_orphan(stack)
    # A create in flight holds the file's upload lock (as create_document does) while the sweep runs.
    async with deps.db.transaction() as s:
        await s.execute(uploads.upload_lock(str(name), wait=True))
        await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S)
        assert await _exists(stack, name)
    created = await _create(stack, new_user, name)
    assert created.document.id == name
    await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S)
    assert await _exists(stack, name)  # recorded now: kept for good


async def test_creates_racing_the_sweep_never_leave_a_document_without_its_file(
    stack: Stack, new_user: AppUser
) -> None:
    deps = h.deps(stack)
    names = [await _old_orphan(stack, f"%PDF-1.4\n% {i}\n%%EOF\n".encode()) for i in range(12)]

    async def create(name: uuid.UUID) -> bool:
        try:
            await _create(stack, new_user, name)
        except NotFound:
            return False
        return True

    results = await asyncio.gather(
        housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S), *(create(n) for n in names)
    )
    for name, created in zip(names, results[1:], strict=True):
        # Recorded and kept, or swept and refused ("upload it again"): never one without the other.
        assert created == await _recorded(stack, name) == await _exists(stack, name), name


class Watched(Blobs):
    """The live store, noting what each sweep read of its changes and what it deleted."""

    def __init__(self, inner: Blobs):
        self.inner = inner
        self.read: list[list[StoredUpload]] = []
        self.deleted: list[str] = []

    async def uploads_stored_after(self, mark: int) -> tuple[list[StoredUpload], int, bool]:
        found = await self.inner.uploads_stored_after(mark)
        self.read.append(found[0])
        return found

    async def delete(self, name: str) -> None:
        self.deleted.append(name)
        await self.inner.delete(name)


async def test_each_sweep_reads_only_the_changes_since_the_last(
    stack: Stack, new_user: AppUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep reads the store's changes after its mark, never the whole store again; an upload too young
    to sweep waits in memory and goes once old, without being read again; names go to the documents in
    batches."""
    monkeypatch.setattr(housekeeping, "CHECK_BATCH", 2)
    watched = Watched(h.deps(stack).blobs)
    deps = dataclasses.replace(h.deps(stack), blobs=watched, upload_sweep=UploadSweep())
    await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S)  # this process's first: everything
    first = {u.name for u in watched.read[0] if not u.deleted}
    mark = deps.upload_sweep.mark
    assert mark > 0

    orphans = [await _old_orphan(stack, f"%PDF-1.4\n% {i}\n%%EOF\n".encode()) for i in range(3)]
    young = await h.put_blob(stack, b"%PDF-1.4\n%%EOF\n")
    recorded = (await h.create(stack, new_user, "kept.pdf")).document.id
    await _stored_long_ago(stack, recorded)
    watched.deleted.clear()
    assert await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S) == 3
    second = {u.name for u in watched.read[1] if not u.deleted}
    assert {str(n) for n in (*orphans, young, recorded)} <= second
    assert not second & first  # nothing read before was read again
    assert sorted(watched.deleted) == sorted(str(n) for n in orphans)
    assert deps.upload_sweep.mark > mark
    assert str(young) in deps.upload_sweep.waiting and str(recorded) not in deps.upload_sweep.waiting
    assert await _exists(stack, young) and await _exists(stack, recorded)

    # Two grace periods later the young upload is old: swept, though nothing new was written about it.
    later = housekeeping.now() + timedelta(seconds=2 * GRACE_S)
    monkeypatch.setattr(housekeeping, "now", lambda: later)
    watched.deleted.clear()
    assert await housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S) >= 1
    assert str(young) in watched.deleted and str(young) not in {u.name for u in watched.read[2]}
    assert not await _exists(stack, young) and await _exists(stack, recorded)
    assert str(young) not in deps.upload_sweep.waiting


async def test_a_mark_from_another_store_reads_the_store_from_its_start(stack: Stack) -> None:
    """After the store was recreated (a restore), a mark beyond its newest change starts the reading over."""
    name = await h.put_blob(stack, b"%PDF-1.4\n%%EOF\n")
    deps = h.deps(stack)
    seen, mark, restarted = await deps.blobs.uploads_stored_after(10**12)
    assert restarted and 0 < mark < 10**12
    assert str(name) in {u.name for u in seen if not u.deleted}
    state = UploadSweep(mark=10**12, waiting={"not-in-this-store": housekeeping.now()})
    await housekeeping.sweep_orphan_uploads(
        dataclasses.replace(deps, upload_sweep=state), older_than_s=GRACE_S
    )
    assert state.mark >= mark  # read from the start, and on
    assert "not-in-this-store" not in state.waiting and str(name) in state.waiting
