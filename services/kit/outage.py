"""A server that is away (NATS or PostgreSQL restarting) is an outage, not a bug: the caller gets
`unavailable` (HTTP 503 with Retry-After) and tries again, instead of `internal` (500) or a hang. The
devstack's supervisor restarts a crashed server within seconds (infra/devstack.py)."""

from __future__ import annotations

import nats.errors
import nats.js.errors
from sqlalchemy import exc as sa_exc

from contracts import Unavailable

RETRY_AFTER_S = 5

_NATS_AWAY = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.js.errors.ServiceUnavailableError,
)


def _database_away(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        exc,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.InterfaceError,
    )


def outage(exc: BaseException) -> Unavailable | None:
    """`unavailable` when `exc` (or what caused it) says a server is not reachable; None otherwise."""
    seen: BaseException | None = exc
    for _ in range(5):  # the exception and a few of its causes (SQLAlchemy wraps the driver's)
        if seen is None:
            break
        if isinstance(seen, _NATS_AWAY):
            return Unavailable(
                "The message bus is not reachable (NATS is restarting); try again shortly.",
                {"retry_after_s": RETRY_AFTER_S},
            )
        if _database_away(seen) or isinstance(seen, ConnectionRefusedError | ConnectionResetError):
            return Unavailable(
                "The database is not reachable (PostgreSQL is restarting); try again shortly.",
                {"retry_after_s": RETRY_AFTER_S},
            )
        seen = (
            getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
        )  # orig: SQLAlchemy's driver error
    return None
