"""Sliding-window rate limits: auth's login, register, refresh, forgot-password and token checks
(services/auth/config.py `DEFAULT_RULES`), the documents service's share links and share-by-email lookups.

A rule allows `limit` events per `window_s` seconds for one key (a client IP, an account, or an account
seen from one client). The window slides: the oldest event leaving it frees a slot, so `Retry-After`
is exact.

Failed sign-ins are counted per account *and* client (`login_client`): a client that keeps guessing one
account's password is refused for that account, and only that client is. Across all clients they are
counted per account (`login_account`) to slow a distributed attack down: past the limit every attempt
on the account waits a little longer (`delay_s`, up to `MAX_DELAY_S`) but is never refused, so a
stranger cannot lock the owner out, whatever they try from wherever (ASVS 6.3: progressive delay).

The windows are in the service's database (`rate_limit_table`: one row per rule and key holding the
window's event times), so every process of a service counts against the same window: the documents
service, which `atrium up` runs as several processes (share-link password guessing must not get N times
the tries), and auth, which may run as several (kept in process memory before, each process limited on
its own: N processes allowed N times the limit). The price is a round trip per check, beside an Argon2
hash or a link lookup. `SharedRateLimiter` names the database per call (the documents service's
module-level limiters); `BoundRateLimiter` holds it (auth's `deps.limiter`).

A check is one read; a hit, and a take (check and count as one step), is one INSERT … ON CONFLICT DO
UPDATE whose row lock serialises concurrent attempts on a key, so they never admit more than the limit; a
refused take reads the window once more for its Retry-After. Times are the database's clock
(`clock_timestamp()`), the same for every process. A row keeps the newest `limit + KEEP_BEYOND_LIMIT`
events of its window (all any answer needs); rows whose newest event left the window are deleted by
`prune_rate_limits` (a loop of each service). The statements run on their own connection, outside the
caller's transaction, so a failure counted before the handler raises stays counted. (NATS KV with
compare-and-set would do too, but concurrent attempts on a key would each retry on conflict; here the
database queues them, and each service already has its database.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Column, Index, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION

from contracts import RateLimited

from .db import Database


@dataclass(frozen=True)
class Rule:
    limit: int
    window_s: float


# Progressive delay: the first attempt past a delaying rule's limit waits BASE_DELAY_S, each further
# failure doubles it, up to MAX_DELAY_S (well inside the gateway's 10 s answer timeout).
BASE_DELAY_S = 0.5
MAX_DELAY_S = 4.0
# A window keeps this many events beyond its limit: enough for `delay_s` to reach MAX_DELAY_S.
KEEP_BEYOND_LIMIT = 4


def _refused(retry_s: float) -> RateLimited:
    retry = max(1, math.ceil(retry_s))
    return RateLimited(f"Too many attempts; try again in {retry} s.", {"retry_after_s": retry})


def parse_rules(spec: str) -> dict[str, Rule]:
    """`login_ip=30/60,forgot_account=3/900` → rules (limit per window in seconds)."""
    rules: dict[str, Rule] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        limit, _, window = value.partition("/")
        rules[name.strip()] = Rule(int(limit), float(window))
    return rules


# ---- shared by every process of a service: the windows in its database -----------------------------------


def rate_limit_table(metadata: MetaData) -> Table:
    """The `rate_limits` table in a service's schema: one row per (rule, key), the event times of its window
    (seconds since the epoch, ascending) and when the row may go (its newest event + the rule's window)."""
    return Table(
        "rate_limits",
        metadata,
        Column("rule", String(64), primary_key=True),
        Column("key", Text, primary_key=True),
        Column("events", ARRAY(DOUBLE_PRECISION), nullable=False),
        Column("expires_at", DOUBLE_PRECISION, nullable=False),
        Index("ix_rate_limits_expires_at", "expires_at"),
    )


def create_rate_limit_table(schema: str) -> None:
    """Alembic: create `rate_limits` as `rate_limit_table` describes it (version 1 of its shape)."""
    op.create_table(
        "rate_limits",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("events", ARRAY(DOUBLE_PRECISION), nullable=False),
        sa.Column("expires_at", DOUBLE_PRECISION, nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", name="pk_rate_limits"),
        schema=schema,
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"], schema=schema)


_NOW = "coalesce($3::float8, extract(epoch FROM clock_timestamp())::float8)"


def _statements(table: str) -> tuple[str, str]:
    """(count into the window, read the window) for the table named `table` (schema-qualified)."""
    # $1 rule, $2 key, $3 now (NULL: the database's clock), $4 window, $5 limit (NULL: count regardless),
    # $6 events to keep. A fresh key inserts its first event; an existing one (locked by the conflict, so
    # concurrent attempts on a key take turns) keeps its newest events inside the window plus this one —
    # unless a limit is given and the window is full: then nothing is written and no row is returned.
    count_in = f"""
        WITH clock AS MATERIALIZED (SELECT {_NOW} AS now)
        INSERT INTO {table} AS r (rule, key, events, expires_at)
        SELECT $1, $2, ARRAY[now], now + $4::float8 FROM clock
        ON CONFLICT (rule, key) DO UPDATE SET
            events = ARRAY(
                SELECT e FROM (
                    SELECT e FROM unnest(r.events || excluded.events) e
                    WHERE e > excluded.events[1] - $4::float8 ORDER BY e DESC LIMIT $6::int
                ) kept ORDER BY e
            ),
            expires_at = greatest(r.expires_at, excluded.expires_at)
        WHERE $5::int IS NULL
            OR (SELECT count(*) FROM unnest(r.events) e WHERE e > excluded.events[1] - $4::float8) < $5::int
        RETURNING 1"""
    read = f"""
        SELECT c.now, coalesce(r.events, '{{}}') AS events
        FROM (SELECT {_NOW} AS now) c LEFT JOIN {table} r ON r.rule = $1 AND r.key = $2"""
    return count_in, read


class SharedRateLimiter:
    """The rules' windows in `table` (see `rate_limit_table`) of the database each call names, shared by
    every process of the service. `clock` (seconds since the epoch, for tests) replaces the database's."""

    def __init__(
        self,
        table: Table,
        rules: dict[str, Rule],
        exempt_ips: frozenset[str] = frozenset(),
        clock: Callable[[], float] | None = None,
    ):
        self.table = table
        self.rules = rules
        self.exempt_ips = exempt_ips
        self.clock = clock
        self._count_in, self._read = _statements(_qualified(table))

    def _rule(self, rule_name: str, key: str) -> Rule | None:
        rule = self.rules.get(rule_name)
        if rule is None or not key or (rule_name.endswith("_ip") and key in self.exempt_ips):
            return None
        return rule

    def _now(self) -> float | None:
        return None if self.clock is None else self.clock()

    async def _window(self, db: Database, rule_name: str, rule: Rule, key: str) -> tuple[float, list[float]]:
        """(now, the events inside the window, oldest first)."""
        row = await db.fetchrow(self._read, rule_name, key, self._now())
        assert row is not None  # a SELECT without FROM conditions: always one row
        now = float(row["now"])
        return now, [e for e in row["events"] if e > now - rule.window_s]

    @staticmethod
    def _retry_s(rule: Rule, now: float, live: Sequence[float]) -> float:
        # The window has a free slot again once all but limit - 1 of its events have left it.
        return live[len(live) - rule.limit] + rule.window_s - now

    async def check(self, db: Database, rule_name: str, key: str) -> None:
        """Refuse with `RateLimited` (and the seconds until a slot frees) when the window is full."""
        rule = self._rule(rule_name, key)
        if rule is None:
            return
        now, live = await self._window(db, rule_name, rule, key)
        if len(live) >= rule.limit:
            raise _refused(self._retry_s(rule, now, live))

    async def hit(self, db: Database, rule_name: str, key: str) -> None:
        """Count an event, whether or not the window was full."""
        rule = self._rule(rule_name, key)
        if rule is not None:
            await self._count(db, rule_name, rule, key, limit=None)

    async def take(self, db: Database, rule_name: str, key: str) -> None:
        """Check, then count this attempt, as one step: of concurrent attempts only the limit's get through."""
        rule = self._rule(rule_name, key)
        if rule is None or await self._count(db, rule_name, rule, key, limit=rule.limit):
            return
        now, live = await self._window(db, rule_name, rule, key)
        # Emptied in between (rare): the attempt was refused all the same; a second later it may go.
        raise _refused(self._retry_s(rule, now, live) if len(live) >= rule.limit else 1)

    async def count(self, db: Database, rule_name: str, key: str) -> int:
        """Events of `key` inside the rule's window now (at most the limit + KEEP_BEYOND_LIMIT)."""
        rule = self._rule(rule_name, key)
        return 0 if rule is None else len((await self._window(db, rule_name, rule, key))[1])

    async def delay_s(self, db: Database, rule_name: str, key: str) -> float:
        """How long the next attempt should wait: 0 up to the rule's limit, then doubling per event."""
        rule = self.rules.get(rule_name)
        over = await self.count(db, rule_name, key) - (rule.limit if rule else 0)
        return 0.0 if rule is None or over < 0 else min(BASE_DELAY_S * 2**over, MAX_DELAY_S)

    def bound(self, db: Database) -> BoundRateLimiter:
        return BoundRateLimiter(self, db)

    async def _count(self, db: Database, rule_name: str, rule: Rule, key: str, *, limit: int | None) -> bool:
        row = await db.fetchrow(
            self._count_in, rule_name, key, self._now(), rule.window_s, limit, rule.limit + KEEP_BEYOND_LIMIT
        )
        return row is not None


class BoundRateLimiter:
    """A `SharedRateLimiter` with its service's database (auth's `deps.limiter`)."""

    def __init__(self, limiter: SharedRateLimiter, db: Database):
        self.limiter, self.db = limiter, db

    async def check(self, rule_name: str, key: str) -> None:
        await self.limiter.check(self.db, rule_name, key)

    async def hit(self, rule_name: str, key: str) -> None:
        await self.limiter.hit(self.db, rule_name, key)

    async def take(self, rule_name: str, key: str) -> None:
        await self.limiter.take(self.db, rule_name, key)

    async def count(self, rule_name: str, key: str) -> int:
        return await self.limiter.count(self.db, rule_name, key)

    async def delay_s(self, rule_name: str, key: str) -> float:
        return await self.limiter.delay_s(self.db, rule_name, key)


async def prune_rate_limits(db: Database, table: Table, clock: Callable[[], float] | None = None) -> int:
    """Delete the windows whose every event has left them; how many went."""
    row = await db.fetchrow(
        f"WITH gone AS (DELETE FROM {_qualified(table)} WHERE expires_at < {_NOW.replace('$3', '$1')}"
        " RETURNING 1) SELECT count(*) FROM gone",
        None if clock is None else clock(),
    )
    return 0 if row is None else int(row[0])


def _qualified(table: Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name
