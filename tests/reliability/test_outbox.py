"""The kit's transactional outbox, as the auth service uses it (real NATS, real Postgres).

A user deleted while NATS refuses the event is still forgotten by every service once NATS takes it
again; a crash between the commit and the publish only delays the event; a relay that published and
died before marking the row sent publishes it again, and the stream keeps one copy (`Nats-Msg-Id`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy
from sqlalchemy import delete, select, text

from contracts import Header
from contracts.auth import USER_CHANGED, USER_DELETED, UserChanged, UserDeleted
from services.auth.tables import outbox, users
from services.kit.db import Database
from services.kit.outbox import Outbox, jetstream_publisher
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration.test_permissions import announce, grants_of

DEADLINE_S = 30.0


async def profile_count(stack: Stack, user_id: str) -> int:
    db = Database(stack.db_urls["profile"], "profile")
    try:
        async with db.session() as s:
            n = (
                await s.execute(text("select count(*) from profiles where user_id = :u"), {"u": user_id})
            ).scalar_one()
    finally:
        await db.dispose()
    return int(n)


async def sent_at(auth_db: Database, msg_id: str) -> list[datetime | None]:
    async with auth_db.session() as s:
        return list((await s.execute(select(outbox.c.sent_at).where(outbox.c.msg_id == msg_id))).scalars())


async def forgotten(stack: Stack, http: httpx.AsyncClient, admin: AppUser, user_id: str) -> None:
    """Until the profile and every grant and membership of `user_id` are gone."""
    end = time.monotonic() + DEADLINE_S
    while True:
        grants = await grants_of(http, admin, user_id)
        if await profile_count(stack, user_id) == 0 and not grants["direct"] and not grants["via_groups"]:
            return
        assert time.monotonic() < end, f"user {user_id} was never forgotten: {grants}"
        await asyncio.sleep(0.1)


async def holding(stack: Stack, http: httpx.AsyncClient, admin: AppUser) -> AppUser:
    """A user with a profile, a direct grant and a group membership."""
    user = await register_and_login(http)
    key = await announce(stack)
    h = admin.headers
    assert (await http.put(f"/admin/users/{user.id}/grants/{key}", headers=h)).status_code == 200
    group = (await http.post("/admin/groups", json={"name": f"Ob {uuid.uuid4().hex[:6]}"}, headers=h)).json()
    assert (await http.put(f"/admin/groups/{group['id']}/members/{user.id}", headers=h)).status_code == 200
    assert (await http.get("/profile", headers=user.headers)).status_code == 200
    assert await profile_count(stack, user.id) == 1
    return user


@asynccontextmanager
async def stream_refusing(stack: Stack, stream: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The stream full and refusing anything new (what NATS answers when a stream hits its limits)
    until the test calls the yielded `recover()`; restored afterwards in any case."""
    js = stack.nc.jetstream()
    info = await js.stream_info(stream)
    normal = info.config
    if info.state.messages == 0:  # a limit of 0 means none: let it hold one message
        await js.publish(USER_CHANGED.subject, b"{}", headers={Header.MSG_ID: f"filler-{uuid.uuid4()}"})
        info = await js.stream_info(stream)
    await js.update_stream(normal.evolve(max_msgs=info.state.messages, discard=DiscardPolicy.NEW))

    async def recover() -> None:
        await js.update_stream(normal)

    try:
        yield recover
    finally:
        await recover()


async def test_a_user_deleted_while_nats_refuses_the_event_is_forgotten_once_it_recovers(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, auth_db: Database
) -> None:
    user = await holding(stack, http, new_admin)
    msg_id = f"user_deleted:{user.id}"
    async with stream_refusing(stack, USER_DELETED.stream) as recover:
        r = await http.delete(f"/admin/users/{user.id}", headers=new_admin.headers)
        assert r.status_code == 200, r.text  # committed: the account is gone, the event waits in the outbox
        assert await sent_at(auth_db, msg_id) == [None]
        assert await profile_count(stack, user.id) == 1  # nobody heard of it: the stream refused it
        assert (await grants_of(http, new_admin, user.id))["direct"]
        await recover()
        await forgotten(stack, http, new_admin, user.id)
    assert (await sent_at(auth_db, msg_id))[0] is not None


async def test_a_crash_between_commit_and_publish_only_delays_the_event(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, auth_db: Database
) -> None:
    user = await holding(stack, http, new_admin)
    await stack.services["auth"].stop()
    try:
        # What admin_delete_user commits, with the process gone before it could publish.
        never = Outbox(outbox, auth_db, publish=_crashed)
        async with auth_db.transaction() as s:
            await s.execute(delete(users).where(users.c.id == uuid.UUID(user.id)))
            await never.enqueue(
                s,
                USER_DELETED,
                UserDeleted(user_id=uuid.UUID(user.id), deleted_at=datetime.now(UTC)),
                msg_id=f"user_deleted:{user.id}",
            )
        assert await never.pending() >= 1
    finally:
        stack.services["auth"] = await stack.start_service("auth")
    await forgotten(stack, http, new_admin, user.id)  # the relay of the next start sent it
    assert (await sent_at(auth_db, f"user_deleted:{user.id}"))[0] is not None


async def test_a_repeated_publish_is_dropped_by_its_msg_id(stack: Stack, auth_db: Database) -> None:
    js = stack.nc.jetstream()
    before = (await js.stream_info(USER_CHANGED.stream)).state.last_seq
    who = uuid.uuid4()
    msg_id = f"user_changed:{who}:test"
    published = 0

    async def publish_then_die(subject: str, body: bytes, headers: dict[str, str]) -> None:
        nonlocal published
        await jetstream_publisher(js)(subject, body, headers)
        published += 1
        raise ConnectionError("killed after the publish, before the row was marked sent")

    await stack.services["auth"].stop()  # only this test's relays touch the outbox meanwhile
    try:
        dying = Outbox(outbox, auth_db, publish=publish_then_die)
        async with auth_db.transaction() as s:
            event = UserChanged(
                user_id=who, role="user", is_active=True, email="x@example.com", changed_at=datetime.now(UTC)
            )
            await dying.enqueue(s, USER_CHANGED, event, msg_id=msg_id)
        with pytest.raises(ConnectionError):
            await dying.relay_once()
        assert published == 1 and await sent_at(auth_db, msg_id) == [None]
        # The next relay (of the restarted process) publishes it again and marks it sent.
        assert await Outbox(outbox, auth_db, publish=jetstream_publisher(js)).relay_once() >= 1
        assert (await sent_at(auth_db, msg_id))[0] is not None
    finally:
        stack.services["auth"] = await stack.start_service("auth")

    sub = await js.pull_subscribe(
        USER_CHANGED.subject,
        stream=USER_CHANGED.stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=before + 1),
    )
    copies = 0
    try:
        while True:
            try:
                batch = await sub.fetch(100, timeout=1)
            except Exception:  # nothing left
                break
            copies += sum(1 for m in batch if (m.headers or {}).get(Header.MSG_ID) == msg_id)
    finally:
        await sub.unsubscribe()
    assert copies == 1  # published twice, stored once


async def _crashed(subject: str, body: bytes, headers: dict[str, str]) -> None:
    raise AssertionError("this process died before it could publish")


async def test_the_relay_publishes_each_row_once_and_looks_for_others_rows_when_idle(
    stack: Stack, auth_db: Database
) -> None:
    """A pass the flush already made is not made again when the commit's wake-up arrives; rows another
    process committed and never sent (it crashed) go out at the next idle look, once."""
    js = stack.nc.jetstream()
    sent: list[str] = []

    async def publish(subject: str, body: bytes, headers: dict[str, str]) -> None:
        await jetstream_publisher(js)(subject, body, headers)
        sent.append(headers[Header.MSG_ID])

    def changed() -> UserChanged:
        return UserChanged(
            user_id=uuid.uuid4(),
            role="user",
            is_active=True,
            email="x@example.com",
            changed_at=datetime.now(UTC),
        )

    await stack.services["auth"].stop()  # only this test's relays touch the outbox meanwhile
    try:
        relay = Outbox(outbox, auth_db, publish=publish, idle_s=3600)
        await relay.relay()  # whatever earlier tests left
        sent.clear()
        mine = f"user_changed:{uuid.uuid4()}:mine"
        async with auth_db.transaction() as s:
            await relay.enqueue(s, USER_CHANGED, changed(), msg_id=mine)
        assert relay.wakeup.is_set()
        await relay.flush()
        assert sent == [mine]
        await relay.relay()  # the loop's pass for that commit's wake-up: flushed already
        assert sent == [mine]

        crashed = Outbox(outbox, auth_db, publish=_crashed)
        theirs = f"user_changed:{uuid.uuid4()}:theirs"
        async with auth_db.transaction() as s:
            await crashed.enqueue(s, USER_CHANGED, changed(), msg_id=theirs)
        await relay.relay()  # within idle_s of the last look: not yet
        assert sent == [mine] and await relay.pending() == 1
        relay.idle_s = 0  # the next look is due
        await relay.relay()
        assert sent == [mine, theirs]
        assert (await sent_at(auth_db, theirs))[0] is not None and await relay.pending() == 0
        await relay.relay()  # an idle look that finds nothing publishes nothing
        assert sent == [mine, theirs]
    finally:
        stack.services["auth"] = await stack.start_service("auth")
