"""Async SQLAlchemy bound to one service's schema and login role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING)


def async_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def make_engine(url: str, schema: str, *, pool_size: int = 5, **kw: Any) -> AsyncEngine:
    """An engine whose every connection uses the service's schema and nothing else."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"server_settings": {"search_path": schema, "application_name": f"atrium-{schema}"}},
        **kw,
    )


class Database:
    def __init__(self, url: str, schema: str):
        self.schema = schema
        self.engine = make_engine(url, schema)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as s:
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
