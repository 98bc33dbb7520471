"""A server that is away is `unavailable` (503 with Retry-After), a bug is not."""

from __future__ import annotations

import asyncpg
import nats.errors
from sqlalchemy import exc as sa_exc

from contracts import ErrorCode
from services.kit.outage import RETRY_AFTER_S, outage


def test_servers_away_are_unavailable() -> None:
    refused = sa_exc.OperationalError("select 1", {}, ConnectionRefusedError(111, "refused"))
    dropped = sa_exc.DBAPIError("select 1", {}, asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    for exc, what in (
        (nats.errors.ConnectionClosedError(), "message bus"),
        (nats.errors.NoServersError(), "message bus"),
        (refused, "database"),
        (dropped, "database"),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), "database"),
        (ConnectionRefusedError(111, "refused"), "database"),
    ):
        err = outage(exc)
        assert err is not None, exc
        assert err.code == ErrorCode.UNAVAILABLE and what in err.message
        assert err.details == {"retry_after_s": RETRY_AFTER_S}


def test_a_wrapped_cause_counts_and_a_bug_does_not() -> None:
    try:
        try:
            raise nats.errors.ConnectionClosedError()
        except nats.errors.Error as inner:
            raise RuntimeError("publishing failed") from inner
    except RuntimeError as outer:
        assert outage(outer) is not None
    assert outage(ValueError("a bug")) is None
    assert outage(KeyError("x")) is None
    assert outage(sa_exc.IntegrityError("insert", {}, Exception("duplicate"))) is None
