"""Async SQLAlchemy bound to one service's schema and login role.

Round trips are the cost of a read, so the pool does not ping a connection before lending it (that
was a BEGIN, a `;` and a ROLLBACK every time): a connection the server closed while it sat in the pool
is noticed without a round trip (asyncpg saw the socket close) and replaced on checkout, and one that
dies during a statement invalidates the pool, as SQLAlchemy does on any disconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from sqlalchemy import MetaData, event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .config import service_concurrency

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# Connections beyond the pool for what runs beside the Rpc handlers: event consumers, background
# loops, health checks.
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

    The pool holds as many connections as the service handles requests at once (`ATRIUM_CONCURRENCY`,
    see `services.kit.config.service_concurrency`), plus `POOL_OVERFLOW` for the rest."""
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size or service_concurrency(),
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

    async def ping(self) -> str:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))
        return "ok"

    async def dispose(self) -> None:
        await self.engine.dispose()


Session = Annotated[AsyncSession, "a transaction-scoped session"]
