"""Async SQLAlchemy bound to one service's schema and login role.

Round trips are the cost of a read, so the pool does not ping a connection before lending it (that
was a BEGIN, a `;` and a ROLLBACK every time): a connection the server closed while it sat in the pool
is noticed without a round trip (asyncpg saw the socket close) and replaced on checkout, and one that
dies during a statement invalidates the pool, as SQLAlchemy does on any disconnect.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from asyncpg.transaction import TransactionState
from sqlalchemy import MetaData, event, exc, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Select

from .config import service_concurrency

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",  # the names the migrations give
    "uq": "%(table_name)s_%(column_0_name)s_key",  # PostgreSQL's own name, which the migrations got
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# Connections kept beside the Rpc handlers' for what runs at the same time: event consumers, background
# loops, health checks. Kept, not overflow: an overflow connection is closed when it is given back, so
# under load each checkout past the pool opened a new one — a new PostgreSQL backend, its password check
# (SCRAM) and cold caches every time (96 backends for the documents service in a 60 s load run).
POOL_EXTRA = 10
# Beyond those, opened for a burst and closed after it.
POOL_OVERFLOW = 10


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING)


def async_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def make_engine(url: str, schema: str, *, pool_size: int | None = None, **kw: Any) -> AsyncEngine:
    """An engine whose every connection uses the service's schema and nothing else.

    The pool keeps as many connections as the service handles requests at once (`ATRIUM_CONCURRENCY`,
    see `services.kit.config.service_concurrency`) plus `POOL_EXTRA` for the rest, and opens up to
    `POOL_OVERFLOW` more for a burst."""
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size or service_concurrency() + POOL_EXTRA,
        max_overflow=POOL_OVERFLOW,
        connect_args={"server_settings": {"search_path": schema, "application_name": f"atrium-{schema}"}},
        **kw,
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Instead of a pre-ping: a connection whose socket the server closed (a restart, an idle timeout,
    `pg_terminate_backend`) is discarded and the pool hands out a new one."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


class ReadSession(AsyncSession):
    """A session for reads in autocommit: one round trip per statement (no BEGIN, no ROLLBACK).

    Each statement is independent, so one that fails on a dropped connection is run once more on a
    fresh one."""

    async def execute(self, statement: Any, *args: Any, **kw: Any) -> Any:
        try:
            return await super().execute(statement, *args, **kw)
        except exc.DBAPIError as err:
            if not err.connection_invalidated:
                raise
            await self.rollback()
            return await super().execute(statement, *args, **kw)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameters in $1, $2, … order
    defaults: dict[str, Any]  # values bound in the statement itself
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: type[tuple[Any, ...]]


class Prepared:
    """A SELECT for the hot path: compiled once, then run by asyncpg as a prepared statement (each pooled
    connection prepares it the first time; its statement cache keeps it) on a connection of the
    service's pool, its rows typed by attribute like SQLAlchemy's. The type conversions SQLAlchemy
    would apply to parameters and columns are applied the same way.

    What it saves: an ORM session read of one row (`Database.read`) cost ~2 ms of CPU, this ~0.3 ms — the
    pool checkout, then asyncpg (measured on the 2-core dev machine).
    Declare it once at module level: `USER = Prepared(select(users).where(users.c.id == bindparam("id")))`,
    run it with `await db.fetch_one(USER, id=…)`."""

    def __init__(self, statement: Select[Any]):
        self.statement = statement
        self._compiled: _Compiled | None = None

    def compiled(self, dialect: Dialect) -> _Compiled:
        if self._compiled is None:
            c = self.statement.compile(dialect=dialect)
            binds = {name: c.binds[name] for name in c.positiontup or ()}
            if any(b.expanding for b in binds.values()):
                raise ValueError("an IN list of variable length cannot be prepared once; use Database.read()")
            columns = list(c._result_columns)
            self._compiled = _Compiled(
                sql=c.string,
                names=tuple(binds),
                defaults={n: b.value for n, b in binds.items() if b.value is not None},
                binds=tuple(b.type._cached_bind_processor(dialect) for b in binds.values()),
                results=tuple(col[3]._cached_result_processor(dialect, None) for col in columns),
                row=namedtuple("Row", [col[0] for col in columns], rename=True),  # type: ignore[misc]
            )
        return self._compiled


async def begin_with(s: AsyncSession, sql: str, *args: str) -> None:
    """Begin the session's transaction with `sql` (positional `$1`… parameters, strings) as its first statement,
    both in ONE round trip: for the statement every transaction of a service starts with (who acts, for
    row-level security) — BEGIN alone was a round trip of its own, the most frequent statement there was.
    Sent as one simple query (`BEGIN …; <sql>`, the values as quoted literals), so it returns nothing; read
    what it set with a statement after it. In a transaction already begun, `sql` joins it. Refuses an
    autocommit session, so a transaction-local setting can never outlive the transaction on a pooled
    connection."""
    conn = await s.connection()  # the session's connection; SQLAlchemy sends BEGIN lazily, on first use
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection  # SQLAlchemy's adapter of the asyncpg connection
    async with adapted._execute_mutex:
        driver = adapted._connection
        if adapted._transaction is not None:
            if not driver.is_in_transaction():
                raise RuntimeError("begin_with needs a session in a transaction (not an autocommit one)")
            await driver.execute(sql, *args)
            return
        if adapted.isolation_level == "autocommit" or driver.is_in_transaction():
            raise RuntimeError("begin_with needs a session in a transaction (not an autocommit one)")
        xact = driver.transaction(
            isolation=adapted.isolation_level, readonly=adapted.readonly, deferrable=adapted.deferrable
        )
        # What asyncpg's Transaction.start() records, then its BEGIN with `sql` in the same round trip. The
        # transaction is tracked before it is sent, so a failure rolls it back (ROLLBACK with no transaction
        # open is only a warning) and the pooled connection never keeps an open or failed one.
        driver._top_xact = xact
        xact._state = TransactionState.STARTED
        adapted._transaction = xact
        await driver.execute(f"{_begin(xact)}; {_with_literals(sql, args)}")


def _begin(xact: Any) -> str:
    """The BEGIN asyncpg's Transaction.start() sends for this transaction."""
    isolation = {
        None: "",
        "read_committed": " ISOLATION LEVEL READ COMMITTED",
        "read_uncommitted": " ISOLATION LEVEL READ UNCOMMITTED",
        "repeatable_read": " ISOLATION LEVEL REPEATABLE READ",
        "serializable": " ISOLATION LEVEL SERIALIZABLE",
    }[xact._isolation]
    return (
        "BEGIN"
        + isolation
        + (" READ ONLY" if xact._readonly else "")
        + (" DEFERRABLE" if xact._deferrable else "")
    )


def _with_literals(sql: str, args: tuple[str, ...]) -> str:
    """`sql` with `$n` replaced by the n-th value as an escaped string literal (E'…': quotes and backslashes
    doubled, whatever standard_conforming_strings says)."""
    for value in args:
        if not isinstance(value, str) or "\x00" in value:
            raise TypeError("begin_with takes strings without NUL characters")
    return re.sub(
        r"\$(\d+)", lambda m: "E'" + args[int(m[1]) - 1].replace("\\", "\\\\").replace("'", "''") + "'", sql
    )


# What asyncpg raises when the connection is gone: the server ended it (FATAL 57P01 and the like), the
# socket closed, or it was closed already ("connection is closed").
_DISCONNECTS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    OSError,
)


class Database:
    def __init__(self, url: str, schema: str, *, pool_size: int | None = None):
        self.schema = schema
        self.engine = make_engine(url, schema, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.reads = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), class_=ReadSession
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Reads that belong together: they run in one transaction, rolled back at the end."""
        async with self.sessions() as s:
            yield s

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Reads that need no transaction (a row by its key, a page of a list): one round trip each."""
        async with self.reads() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s, s.begin():
            yield s

    async def fetch_one(self, query: Prepared, **params: Any) -> Any | None:
        """The first row of a prepared SELECT (attributes by column name), or None. One round trip; like
        `read()`, a statement that hits a dropped connection runs once more on a fresh one."""
        q = query.compiled(self.engine.dialect)
        values = {**q.defaults, **params}
        args = [
            values[n] if conv is None else conv(values[n]) for n, conv in zip(q.names, q.binds, strict=True)
        ]
        record = await self.fetchrow(q.sql, *args)
        if record is None:
            return None
        return q.row(*(v if conv is None else conv(v) for v, conv in zip(record, q.results, strict=True)))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of `sql` (positional `$1`… parameters) run on its own, in autocommit, straight on
        asyncpg; a statement that hits a dropped connection runs once more on a fresh one."""
        for attempt in (1, 2):
            async with self.engine.connect() as conn:
                # The asyncpg connection under SQLAlchemy's (no greenlet hop), with its statement cache.
                assert conn.sync_connection is not None
                driver = conn.sync_connection.connection.driver_connection
                assert driver is not None
                try:
                    return await driver.fetchrow(sql, *args)
                except _DISCONNECTS:
                    if attempt == 2 or not driver.is_closed():
                        raise
                    await conn.invalidate()
        raise AssertionError("unreachable")

    async def ping(self) -> str:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))
        return "ok"

    async def dispose(self) -> None:
        await self.engine.dispose()


Session = Annotated[AsyncSession, "a transaction-scoped session"]
