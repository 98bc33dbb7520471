"""Issue 16: a whole uploaded file no document records (the gateway died after storing it, before asking for
its document) is swept after the grace period — never a file a document records, never one whose document
is being created (`housekeeping.sweep_orphan_uploads`, `uploads.create_document`'s upload lock). The real
gateway kill is tests/reliability/test_faults.py::test_gateway_killed_mid_upload."""

from __future__ import annotations

import asyncio
import base64
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
