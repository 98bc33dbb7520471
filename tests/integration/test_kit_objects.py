"""Reading an object never waits without end: a chunk that does not come fails the read (`Unavailable`),
so an event handler reading an extraction result gives its message back for redelivery."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

from contracts import Unavailable
from services.kit.objects import iter_object
from tests.conftest import Stack
from tests.integration import docs_helpers as h


async def _read(stack: Stack, name: str, chunk_wait_s: float) -> bytes:
    store = await h.store(stack)
    return b"".join([chunk async for chunk in iter_object(store, name, chunk_wait_s=chunk_wait_s)])


async def test_an_object_whose_chunks_are_gone_fails_the_read_instead_of_waiting(stack: Stack) -> None:
    data = b"%PDF-1.4\n" + b"x" * 300_000 + b"\n%%EOF\n"
    whole = str(await h.put_blob(stack, data))
    assert await _read(stack, whole, chunk_wait_s=5) == data

    name = str(await h.put_blob(stack, data))
    store = await h.store(stack)
    info = await store.get_info(name)
    # Its chunks purged, its meta entry kept: the store still says it exists, but no chunk will ever come.
    await store._js.purge_stream(
        OBJ_STREAM_TEMPLATE.format(bucket=store._name),
        subject=OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=store._name, obj=info.nuid),
    )
    # (Bounded here too: a read that waited forever, as before, fails this test instead of hanging it.)
    with pytest.raises(Unavailable, match="sent no part"):
        async with asyncio.timeout(30):
            await _read(stack, name, chunk_wait_s=0.5)
