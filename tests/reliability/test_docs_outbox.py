"""The documents service dies between its commit and the publish: the outbox relay of the next start
publishes the upload event, and a relay that crashed after publishing does not produce a second one."""

from __future__ import annotations

import asyncio
import types
import uuid
from datetime import UTC, datetime

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import insert, select

from contracts import Header
from contracts.documents import DOCUMENT_UPLOADED
from contracts.streams import DOCUMENTS_STREAM
from services.docs.access import Caller, acting
from services.docs.handlers.runs import queue_run
from services.docs.tables import documents, outbox
from services.kit.db import Database
from services.kit.outbox import Outbox
from services.kit.security import Actor
from tests.conftest import AppUser, Stack


async def messages_with_id(stack: Stack, msg_id: str) -> int:
    js = stack.nc.jetstream()
    sub = await js.pull_subscribe(
        DOCUMENT_UPLOADED.subject,
        stream=DOCUMENTS_STREAM.name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    found = 0
    try:
        while True:
            try:
                batch = await sub.fetch(200, timeout=1)
            except Exception:  # nothing left
                break
            found += sum(1 for m in batch if (m.headers or {}).get(Header.MSG_ID) == msg_id)
    finally:
        await sub.unsubscribe()
    return found


async def test_relay_publishes_what_a_crash_left_behind(stack: Stack, new_user: AppUser) -> None:
    await stack.services["docs"].stop()
    db = Database(stack.db_urls["docs"], "docs")
    doc_id, run_id = uuid.uuid4(), uuid.uuid4()
    msg_id = f"{doc_id}:{run_id}"
    try:
        # A relay that publishes and then dies before marking the row sent.
        async def publish_then_crash(subject: str, body: bytes, headers: dict[str, str]) -> None:
            DOCUMENT_UPLOADED.model.model_validate_json(body)  # what the outbox holds is the event itself
            await stack.nc.jetstream().publish(subject, body, headers=headers)
            raise ConnectionError("killed")

        box = Outbox(outbox, db, publish_then_crash)
        # What create_document commits, with the service gone before it could publish.
        owner = Caller(Actor(user_id=uuid.UUID(new_user.id), role="user", session_id="s", token=""))
        async with acting(db, owner, write=True) as s:
            row = (
                await s.execute(
                    insert(documents)
                    .values(
                        id=doc_id,
                        owner_id=uuid.UUID(new_user.id),
                        filename="crash.pdf",
                        object_name=str(doc_id),
                        size=10,
                        sha256="0" * 64,
                        status="queued",
                        run_id=run_id,
                        created_at=datetime.now(UTC),
                    )
                    .returning(documents)
                )
            ).one()
            await queue_run(s, row, "extract", types.SimpleNamespace(queue_work=True, outbox=box))

        with pytest.raises(ConnectionError):
            await box.relay_once()
        async with db.session() as s:
            assert (
                await s.execute(select(outbox.c.sent_at).where(outbox.c.msg_id == msg_id))
            ).scalar() is None
    finally:
        stack.services["docs"] = await stack.start_service("docs")
    try:
        for _ in range(100):
            async with db.session() as s:
                sent = (await s.execute(select(outbox.c.sent_at).where(outbox.c.msg_id == msg_id))).scalar()
            if sent is not None:
                break
            await asyncio.sleep(0.1)
        assert sent is not None, "the relay of the restarted service did not publish the outbox row"
        assert await messages_with_id(stack, msg_id) == 1  # published twice, stored once (Nats-Msg-Id)
    finally:
        await db.dispose()
