"""The kit's database access (services.kit.db): what a read costs on the wire, and a dropped connection.

Round trips are counted by a TCP relay between the engine and PostgreSQL: asyncpg sends a request and
waits for its answer before the next, so every chunk the client sends is one round trip.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import bindparam, insert, select, text

from services.auth.tables import users
from services.kit.db import Database, Prepared, begin_with
from tests.conftest import Stack


class Relay:
    """Forwards TCP to PostgreSQL and counts what the client sends."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sent = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    self.sent += count
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(client_r, up_w, True), pipe(up_r, client_w, False))

    def close(self) -> None:
        if self.server:
            self.server.close()


def by_user_id() -> object:
    return select(users.c.id, users.c.email).where(users.c.id == uuid.uuid4())


async def test_a_read_is_one_round_trip_and_a_session_pings_nothing(stack: Stack) -> None:
    relay = Relay(stack.pg.port)
    port = await relay.start()
    db = Database(stack.db_urls["auth"].replace(f":{stack.pg.port}/", f":{port}/"), "auth", pool_size=1)
    try:
        for _ in range(2):  # the connection's set-up and the statement's preparation happen once
            async with db.read() as s:
                await s.execute(by_user_id())
            async with db.session() as s:
                await s.execute(by_user_id())
        relay.sent = 0
        async with db.read() as s:
            assert (await s.execute(by_user_id())).first() is None
        assert relay.sent == 1, "a read is the statement alone: no ping, no BEGIN, no ROLLBACK"
        relay.sent = 0
        async with db.session() as s:
            assert (await s.execute(by_user_id())).first() is None
        assert relay.sent == 3, "a session is BEGIN, the statement, ROLLBACK: no ping before"
    finally:
        await db.dispose()
        relay.close()


async def test_reads_and_transactions_survive_connections_the_server_ended(stack: Stack) -> None:
    """No pre-ping: a pooled connection that PostgreSQL terminated is replaced, not handed out."""
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    admin = await asyncpg.connect(stack.pg.admin_url)
    pid_query = text("select pg_backend_pid()")
    try:
        async with db.read() as s:
            first = (await s.execute(pid_query)).scalar_one()
        # Waits until the backend is gone (up to 5 s); the pool still holds its connection.
        assert await admin.fetchval("select pg_terminate_backend($1, 5000)", first)
        async with db.read() as s:
            second = (await s.execute(pid_query)).scalar_one()
        assert second != first
        assert await admin.fetchval("select pg_terminate_backend($1, 5000)", second)
        # A transaction is not retried: it relies on the pool having seen the socket close, as it does
        # while a connection idles (the loop handles the close before this sleep ends).
        await asyncio.sleep(0.05)
        async with db.transaction() as s:
            third = (await s.execute(pid_query)).scalar_one()
        assert third not in (first, second)
    finally:
        await admin.close()
        await db.dispose()


USER = Prepared(select(users).where(users.c.id == bindparam("user_id")))
BACKEND_PID = Prepared(select(text("pg_backend_pid()")))


async def test_a_prepared_read_is_one_round_trip_and_reads_what_the_orm_reads(stack: Stack) -> None:
    relay = Relay(stack.pg.port)
    port = await relay.start()
    db = Database(stack.db_urls["auth"].replace(f":{stack.pg.port}/", f":{port}/"), "auth", pool_size=1)
    uid = uuid.uuid4()
    try:
        async with db.transaction() as s:
            await s.execute(
                insert(users).values(
                    id=uid, email=f"{uid.hex}@example.com", password_hash="x", full_name="Ada"
                )
            )
        assert await db.fetch_one(USER, user_id=uuid.uuid4()) is None  # prepares it on the connection
        relay.sent = 0
        row = await db.fetch_one(USER, user_id=uid)
        assert relay.sent == 1, "a prepared read is Bind/Execute alone"
        async with db.read() as s:
            orm = (await s.execute(select(users).where(users.c.id == uid))).one()
        assert row is not None and row._fields == tuple(orm._fields)
        for name in orm._fields:
            assert getattr(row, name) == getattr(orm, name), name
            assert isinstance(getattr(row, name), type(getattr(orm, name))), name
    finally:
        async with db.transaction() as s:
            await s.execute(users.delete().where(users.c.id == uid))
        await db.dispose()
        relay.close()


async def test_a_prepared_read_survives_a_connection_the_server_ended(stack: Stack) -> None:
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    admin = await asyncpg.connect(stack.pg.admin_url)
    try:
        first = (await db.fetch_one(BACKEND_PID))[0]
        assert await admin.fetchval("select pg_terminate_backend($1, 5000)", first)
        second = (await db.fetch_one(BACKEND_PID))[0]
        assert second != first
    finally:
        await admin.close()
        await db.dispose()


SLOW_PID = Prepared(select(text("pg_backend_pid()")).select_from(text("pg_sleep(0.5)")))


async def test_a_prepared_read_whose_connection_dies_mid_statement_runs_once_more(stack: Stack) -> None:
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    admin = await asyncpg.connect(stack.pg.admin_url)
    try:
        read = asyncio.create_task(db.fetch_one(SLOW_PID))
        victim = None
        while victim is None:  # the statement is running once PostgreSQL lists it
            victim = await admin.fetchval(
                "select pid from pg_stat_activity where query like '%pg_sleep(0.5)%' and pid <> pg_backend_pid()"
            )
        assert await admin.fetchval("select pg_terminate_backend($1, 5000)", victim)
        row = await read
        assert row is not None and row[0] != victim
    finally:
        await admin.close()
        await db.dispose()


async def test_an_in_list_of_variable_length_is_not_prepared(stack: Stack) -> None:
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    try:
        with pytest.raises(ValueError, match="IN list"):
            await db.fetch_one(
                Prepared(select(users).where(users.c.id.in_(bindparam("ids", expanding=True))))
            )
    finally:
        await db.dispose()


SETTING = text("select current_setting('atrium.test_who', true)")
SET_WHO = "select set_config('atrium.test_who', $1, true)"


async def test_begin_with_sets_a_transaction_local_value_that_no_later_transaction_sees(stack: Stack) -> None:
    """`begin_with` (how the documents service says who acts) runs in the session's transaction: the value is
    there for the statements after it, and gone for the next user of the pooled connection — in a session,
    a transaction and an autocommit read alike."""
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    try:
        async with db.session() as s:
            pid = (await s.execute(text("select pg_backend_pid()"))).scalar_one()
        async with db.session() as s:
            await begin_with(s, SET_WHO, "alice")
            assert (await s.execute(SETTING)).scalar_one() == "alice"
            assert (await s.execute(text("select pg_backend_pid()"))).scalar_one() == pid  # one connection
        async with db.transaction() as s:
            assert (await s.execute(SETTING)).scalar_one() in (None, "")
            await begin_with(s, SET_WHO, "bob")
            assert (await s.execute(SETTING)).scalar_one() == "bob"
        async with db.read() as s:
            assert (await s.execute(SETTING)).scalar_one() in (None, "")
        async with db.session() as s:
            await s.execute(text("select 1"))  # the transaction already begun: begin_with joins it
            await begin_with(s, SET_WHO, "carol")
            assert (await s.execute(SETTING)).scalar_one() == "carol"
        async with db.session() as s:
            assert (await s.execute(SETTING)).scalar_one() in (None, "")
            assert (await s.execute(text("select pg_backend_pid()"))).scalar_one() == pid
    finally:
        await db.dispose()


async def test_begin_with_refuses_a_session_without_a_transaction(stack: Stack) -> None:
    """In an autocommit read the setting would end with its own statement, or worse: refused outright."""
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    try:
        async with db.read() as s:
            with pytest.raises(RuntimeError, match="transaction"):
                await begin_with(s, SET_WHO, "mallory")
            assert (await s.execute(SETTING)).scalar_one() in (None, "")
    finally:
        await db.dispose()


async def test_begin_with_sends_values_as_they_are_and_a_failure_leaves_no_transaction(stack: Stack) -> None:
    """BEGIN and `begin_with`'s statement go in one round trip with the values as literals: quotes and
    backslashes arrive unchanged, and a statement that fails ends its transaction (the pooled connection's
    next user finds none open and nothing set)."""
    db = Database(stack.db_urls["auth"], "auth", pool_size=1)
    tricky = "it's a \\'path\\' -- $1 ; select 1"
    try:
        async with db.transaction() as s:
            await begin_with(s, SET_WHO, tricky)
            assert (await s.execute(SETTING)).scalar_one() == tricky
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with db.transaction() as s:
                await begin_with(s, "select set_config('atrium.test_who', $1, true), 1 / 0", "dave")
        async with db.session() as s:  # would fail as "current transaction is aborted" if it were left open
            assert (await s.execute(SETTING)).scalar_one() in (None, "")
        with pytest.raises(TypeError):
            async with db.transaction() as s:
                await begin_with(s, SET_WHO, "nul\x00")
    finally:
        await db.dispose()
