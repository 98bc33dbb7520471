"""Reading an object never waits without end: a chunk that does not come fails the read (`Unavailable`),
so an event handler reading an extraction result gives its message back for redelivery; a read that stalls
once is started again and succeeds."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

from contracts import Unavailable
from services.kit.objects import READ_ATTEMPTS, iter_object, read_object_into
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


async def test_a_stalled_read_is_started_again_and_an_always_stalled_one_fails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"%PDF-1.4\n" + bytes(range(256)) * 2_000 + b"\n%%EOF\n"
    name = str(await h.put_blob(stack, data))
    store = await h.store(stack)
    real_subscribe = store._js.subscribe
    stalls = {"left": 1, "subscriptions": 0}

    async def subscribe_stalling(subject: str, **kw: Any) -> Any:
        # A stall as the ordered consumer shows it: a subscription on which no chunk ever arrives.
        stalls["subscriptions"] += 1
        if stalls["left"] > 0:
            stalls["left"] -= 1
            subject += ".never"
        return await real_subscribe(subject, **kw)

    monkeypatch.setattr(store._js, "subscribe", subscribe_stalling)
    target = io.BytesIO(b"left over from somewhere else")
    async with asyncio.timeout(30):
        await read_object_into(store, name, target, chunk_wait_s=0.5)
    assert target.getvalue() == data  # the stalled attempt left nothing behind
    assert stalls["subscriptions"] == 2

    stalls.update(left=READ_ATTEMPTS, subscriptions=0)
    with pytest.raises(Unavailable, match="sent no part"):
        async with asyncio.timeout(30):
            await read_object_into(store, name, io.BytesIO(), chunk_wait_s=0.5)
    assert stalls["subscriptions"] == READ_ATTEMPTS
