"""Task history at scale (migration 0012): the statistics come from per-day rollups kept by triggers on
`tasks`, the list pages by keyset and caps its count. Each test compares the handlers' answers with what the
task rows themselves say, computed here in Python, after inserts, updates, deletions, retries and re-runs."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from contracts import Forbidden
from contracts.docs_api import TASK_TOTAL_CAP, ListTasks, TaskRef, TaskStats, TaskStatsQuery
from contracts.documents import DocumentFailed
from services.docs.access import as_system
from services.docs.handlers import pipeline
from services.docs.handlers.tasks import list_tasks, retry_task, task_stats
from services.docs.tables import (
    task_durations,
    task_durations_month,
    task_rollup,
    task_rollup_folds,
    task_rollup_month,
    task_rollup_pending,
    tasks,
)
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h

STATUSES = ["succeeded"] * 6 + ["failed", "superseded", "queued", "running"]
KINDS = ["extract", "analyze", "reprocess"]


def _window() -> datetime:
    """A stretch of the past no other test writes tasks in (the administrator's view counts everyone's)."""
    return datetime(1971, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(0, 20 * 365))


def _rows(owner: uuid.UUID, start: datetime, n: int, rng: random.Random, prefix: str) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        kind = rng.choice(KINDS)
        status = rng.choice(STATUSES)
        analyzed = kind == "analyze"
        provider = rng.choice(["builtin", "anthropic"]) if analyzed else None
        out.append(
            {
                "id": uuid.uuid4(),
                "owner_id": owner,
                "document_id": None,
                "filename": f"{prefix}-{i}{rng.choice(['', '_50%', ' Über'])}.pdf",
                "run_id": uuid.uuid4(),
                "stage": "analyze" if analyzed else "extract",
                "kind": kind,
                "status": status,
                "attempt": 1,
                "created_at": start + timedelta(seconds=rng.randrange(0, 10 * 86400)),
                "duration_ms": rng.choice([None, 0, 1, rng.randrange(5, 90_000)]),
                "provider": provider,
                "model": rng.choice(["m1", None]) if analyzed else None,
                "tokens_in": rng.randrange(0, 5000) if analyzed else None,
                "tokens_out": rng.randrange(0, 500) if analyzed else None,
            }
        )
    return out


def _expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The statistics as the tasks say them (what `docs.task.stats` answered before the rollups)."""
    durations = sorted(r["duration_ms"] for r in rows if r["duration_ms"] is not None)
    providers: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["provider"] is not None:
            providers[(r["provider"], r["model"])].append(r)
    days: dict[date, Counter[str]] = defaultdict(Counter)
    for r in rows:
        day = r["created_at"].astimezone(UTC).date()
        days[day]["tasks"] += 1
        days[day][r["status"]] += 1

    def avg(values: list[int]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "total": len(rows),
        "by_status": dict(Counter(r["status"] for r in rows)),
        "by_kind": dict(Counter(r["kind"] for r in rows)),
        "avg_duration_ms": avg(durations),
        "by_provider": [
            (p, m, len(rs), sum(r["tokens_in"] or 0 for r in rs), sum(r["tokens_out"] or 0 for r in rs))
            for (p, m), rs in sorted(providers.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ],
        "provider_avg": [
            avg([r["duration_ms"] for r in rs if r["duration_ms"] is not None])
            for _, rs in sorted(providers.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ],
        "by_day": [(d, c["tasks"], c["succeeded"], c["failed"]) for d, c in sorted(days.items())][-90:],
        "p95_at": durations[math.floor(0.95 * (len(durations) - 1))] if durations else None,
    }


def _assert_matches(stats: TaskStats, rows: list[dict[str, Any]]) -> None:
    want = _expected(rows)
    assert stats.total == want["total"]
    assert stats.by_status == want["by_status"]
    assert stats.by_kind == want["by_kind"]
    assert stats.avg_duration_ms == pytest.approx(want["avg_duration_ms"])
    got = [(p.provider, p.model, p.tasks, p.tokens_in, p.tokens_out) for p in stats.by_provider]
    assert got == want["by_provider"]
    assert [p.avg_duration_ms for p in stats.by_provider] == pytest.approx(want["provider_avg"])
    assert [(d.day, d.tasks, d.succeeded, d.failed) for d in stats.by_day] == want["by_day"]
    # The p95 is read from buckets 10 % wide: within 5 % of the duration at the 95th rank.
    if want["p95_at"] is None:
        assert stats.p95_duration_ms is None
    else:
        assert stats.p95_duration_ms is not None
        assert abs(stats.p95_duration_ms - want["p95_at"]) <= 0.05 * want["p95_at"] + 1e-9


async def _insert(stack: Stack, rows: list[dict[str, Any]]) -> None:
    async with as_system(h.deps(stack).db, "pipeline") as s:
        await s.execute(insert(tasks), rows)


def _in(rows: list[dict[str, Any]], lo: datetime | None, hi: datetime | None) -> list[dict[str, Any]]:
    return [
        r for r in rows if (lo is None or r["created_at"] >= lo) and (hi is None or r["created_at"] <= hi)
    ]


async def test_stats_from_the_rollups_match_the_tasks_through_changes(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    rng = random.Random(16)
    start = _window()
    other = await h.register_other(http)
    mine = _rows(uuid.UUID(new_user.id), start, 400, rng, "mine")
    theirs = _rows(uuid.UUID(other.id), start, 150, rng, "theirs")
    await _insert(stack, mine)
    await _insert(stack, theirs[:70])
    await _insert(stack, theirs[70:])  # a second statement adds to the same days' rows
    deps = h.deps(stack)
    me, them = h.ctx(await h.actor(stack, new_user)), h.ctx(await h.actor(stack, other))
    admin = h.ctx(await h.actor(stack, new_admin))
    end = start + timedelta(days=10)

    async def check() -> None:
        _assert_matches(await task_stats(TaskStatsQuery(), me, deps), mine)
        _assert_matches(await task_stats(TaskStatsQuery(), them, deps), theirs)
        # Ranges cut inside days: whole days from the rollups, their ends from the tasks.
        lo, hi = start + timedelta(days=2, hours=13, minutes=17), start + timedelta(days=6, hours=5)
        for a, b in ((lo, hi), (lo, None), (None, hi), (lo, lo + timedelta(hours=20)), (lo, lo)):
            q = TaskStatsQuery(created_from=a, created_to=b)
            _assert_matches(await task_stats(q, me, deps), _in(mine, a, b))
        midnight = datetime.combine((start + timedelta(days=3)).date(), datetime.min.time(), UTC)
        q = TaskStatsQuery(created_from=midnight, created_to=midnight + timedelta(days=2))
        _assert_matches(await task_stats(q, me, deps), _in(mine, midnight, midnight + timedelta(days=2)))
        # Everyone's, for an administrator (the window holds only this test's tasks).
        q = TaskStatsQuery(all_users=True, created_from=start - timedelta(days=1), created_to=end)
        _assert_matches(await task_stats(q, admin, deps), _in(mine + theirs, start - timedelta(days=1), end))

    await check()
    with pytest.raises(Forbidden):
        await task_stats(TaskStatsQuery(all_users=True), me, deps)

    # Tasks move on (queued -> running -> succeeded, with a duration), are re-dated and deleted.
    async with as_system(deps.db, "pipeline") as s:
        for r in mine[:60]:
            r.update(status="succeeded", duration_ms=rng.randrange(1, 40_000))
            await s.execute(
                update(tasks)
                .where(tasks.c.id == r["id"])
                .values(status=r["status"], duration_ms=r["duration_ms"])
            )
        moved = [r["id"] for r in mine[60:90]]
        for r in mine[60:90]:
            r["created_at"] += timedelta(days=1, hours=3)
        await s.execute(
            update(tasks)
            .where(tasks.c.id.in_(moved))
            .values(created_at=tasks.c.created_at + timedelta(days=1, hours=3))
        )
        gone = {r["id"] for r in mine[90:140]} | {r["id"] for r in theirs[:20]}
        await s.execute(delete(tasks).where(tasks.c.id.in_(gone)))
    mine = [r for r in mine if r["id"] not in gone]
    theirs = [r for r in theirs if r["id"] not in gone]
    await check()

    # A user's tasks all gone (a forgotten user): no rollup row of theirs is left (day or month), once the
    # deletion commits (the rollups are written at commit, migration 0013), and nothing stays staged.
    async with as_system(deps.db, "forget_user") as s:
        await s.execute(delete(tasks).where(tasks.c.owner_id == uuid.UUID(other.id)))
    async with as_system(deps.db, "forget_user") as s:
        for table in (task_rollup, task_rollup_month, task_durations, task_durations_month):
            left = (await s.execute(select(table).where(table.c.owner_id == uuid.UUID(other.id)))).all()
            assert left == [], table.name
    _assert_matches(await task_stats(TaskStatsQuery(), them, deps), [])


async def test_the_rollups_follow_a_real_failure_retry_and_rerun(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = uuid.UUID(new_user.id)
    deps = h.deps(stack)
    me = h.ctx(await h.actor(stack, new_user))
    await h.ready_document(stack, new_user, "good.pdf", "fine")
    bad = (await h.create(stack, new_user, "bad.pdf")).document
    failed = DocumentFailed(
        document_id=bad.id,
        owner_id=owner,
        run_id=bad.run_id,
        stage="extract",
        reason="unreadable",
        message="xref broken",
        attempt=3,
        final=True,
        finished_at=datetime.now(UTC),
    )
    await pipeline.on_failed(failed, h.ctx(), deps)

    async def actual() -> list[dict[str, Any]]:
        async with h.owner_session(stack, new_user) as s:
            rows = (await s.execute(select(tasks).where(tasks.c.owner_id == owner))).mappings().all()
        return [dict(r) for r in rows]

    _assert_matches(await task_stats(TaskStatsQuery(), me, deps), await actual())
    page = await list_tasks(ListTasks(status=["failed"]), me, deps)
    rerun = await retry_task(TaskRef(id=page.items[0].id), me, deps)  # a new run (a reprocess task, queued)
    rows = await actual()
    assert sorted(r["kind"] for r in rows) == ["analyze", "extract", "extract", "reprocess"]
    _assert_matches(await task_stats(TaskStatsQuery(), me, deps), rows)
    await h.extracted(stack, bad.id, owner, rerun.run_id, ["fine now"])  # the re-run's extraction finishes
    _assert_matches(await task_stats(TaskStatsQuery(), me, deps), await actual())


async def test_the_rollups_are_written_only_by_the_triggers(stack: Stack, new_user: AppUser) -> None:
    with pytest.raises(DBAPIError, match="row-level security"):
        async with h.owner_session(stack, new_user, write=True) as s:
            await s.execute(
                insert(task_rollup).values(
                    owner_id=uuid.UUID(new_user.id),
                    day=date(2001, 1, 1),
                    status="succeeded",
                    kind="extract",
                    provider="",
                    model="",
                    tasks=1_000_000,
                    timed=0,
                    duration_ms=0,
                    tokens_in=0,
                    tokens_out=0,
                )
            )
    async with h.owner_session(stack, new_user) as s:  # and nobody reads another's
        others = (
            await s.execute(text("SELECT count(*) FROM task_rollup WHERE owner_id <> acting_user()"))
        ).scalar()
    assert others == 0


async def test_keyset_pages_capped_count_and_filters(stack: Stack, new_user: AppUser) -> None:
    rng = random.Random(17)
    owner = uuid.UUID(new_user.id)
    start = _window()
    rows = _rows(owner, start, TASK_TOTAL_CAP + 150, rng, "page")
    for r in rows[:40]:  # ties on created_at are ordered by id
        r["created_at"] = start
    await _insert(stack, rows)
    deps = h.deps(stack)
    me = h.ctx(await h.actor(stack, new_user))
    newest = sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)

    page = await list_tasks(ListTasks(limit=500), me, deps)
    assert (page.total, page.total_capped) == (TASK_TOTAL_CAP, True)
    seen, cursor = [t.id for t in page.items], page.next_cursor
    while cursor:
        page = await list_tasks(ListTasks(limit=500, cursor=cursor), me, deps)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
    assert seen == [r["id"] for r in newest]

    failed = [r for r in newest if r["status"] == "failed"]
    page = await list_tasks(ListTasks(limit=7, status=["failed"]), me, deps)
    assert (page.total, page.total_capped) == (len(failed), False)
    assert [t.id for t in page.items] == [r["id"] for r in failed[:7]]
    some = [r for r in newest if r["status"] in ("queued", "running") and r["kind"] == "reprocess"]
    page = await list_tasks(ListTasks(limit=500, status=["queued", "running"], kind=["reprocess"]), me, deps)
    assert ([t.id for t in page.items], page.total, page.total_capped) == (
        [r["id"] for r in some],
        len(some),
        False,
    )
    # A filename substring, case-insensitive, with LIKE's own characters taken literally (trigram index).
    for part in ("_50%", "über", "page-10", "E-1"):
        want = [r["id"] for r in newest if part.lower() in r["filename"].lower()]
        page = await list_tasks(ListTasks(limit=500, filename=part), me, deps)
        assert [t.id for t in page.items] == want[:500]
        assert (page.total, page.total_capped) == (min(len(want), TASK_TOTAL_CAP), len(want) > TASK_TOTAL_CAP)
    lo, hi = start + timedelta(days=3), start + timedelta(days=4)
    want = [r["id"] for r in newest if lo <= r["created_at"] <= hi]
    page = await list_tasks(ListTasks(limit=500, created_from=lo, created_to=hi), me, deps)
    assert ([t.id for t in page.items], page.total, page.total_capped) == (want, len(want), False)


async def _scan(stack: Stack, owner: uuid.UUID | None, lo: datetime | None, hi: datetime | None) -> list[Any]:
    """The tasks themselves in [lo, hi] (one owner's, or everyone's), read past row-level security."""
    t = tasks.c
    conds = [*([t.owner_id == owner] if owner else []), *([t.created_at >= lo] if lo else [])]
    conds += [t.created_at <= hi] if hi else []
    async with as_system(h.deps(stack).db, "pipeline", write=False) as s:
        return [dict(r) for r in (await s.execute(select(tasks).where(*conds))).mappings().all()]


def _month(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


async def test_stats_over_months_match_a_scan(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    """Ranges of whole months (the month rollups), partial months at either end (the day rollups), parts of
    days (the tasks), bounds in other time zones (a day is the UTC day), open and empty ranges."""
    rng = random.Random(18)
    year, month = rng.randrange(1972, 1992), rng.randrange(1, 13)
    m0, m1, m2, m3, m4 = (_month(year, month + i) for i in range(5))
    owner = uuid.UUID(new_user.id)
    mine = _rows(owner, m0 + timedelta(days=10), 0, rng, "month")
    for i in range(12):  # ~110 days from m0 + 10 days: the end of m0 to the start of m4
        mine += _rows(owner, m0 + timedelta(days=10 + 10 * i), 50, rng, f"month{i}")
    # On the very edges of months and UTC days.
    for edge in (m1, m2, m3):
        for at in (edge, edge - timedelta(microseconds=1), edge + timedelta(hours=23, minutes=59)):
            mine += [dict(r, created_at=at) for r in _rows(owner, at, 3, rng, "edge")]
    await _insert(stack, mine)
    deps = h.deps(stack)
    me, admin = h.ctx(await h.actor(stack, new_user)), h.ctx(await h.actor(stack, new_admin))
    plus5, minus8 = timezone(timedelta(hours=5)), timezone(timedelta(hours=-8))
    tick = timedelta(microseconds=1)
    ranges: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (m1, m3 - tick),  # exactly two whole months
        (m1, m3),  # and the first instant of the next
        (m1 - tick, m3),
        (m0 + timedelta(days=17, hours=13, minutes=17), m3 + timedelta(days=9, hours=5)),  # partial both ends
        (m1, m2 + timedelta(days=12, hours=7)),
        (m1 + timedelta(days=3), m3 - tick),
        (m1 + timedelta(days=1), m2 - timedelta(days=1)),  # within one month... and crossing none
        (m2 + timedelta(days=2), m2 + timedelta(days=5)),  # whole days inside one month
        (m1, None),
        (None, m2 + timedelta(days=3, hours=1)),
        (m1.astimezone(plus5), m3.astimezone(minus8)),  # the same instants written in other zones
        (datetime(m1.year, m1.month, 1, tzinfo=plus5), datetime(m3.year, m3.month, 1, 12, tzinfo=minus8)),
        (m2 + timedelta(hours=5), m2 + timedelta(hours=5)),  # an instant
        (m2 + timedelta(days=5), m2 + timedelta(days=1)),  # reversed: nothing
        (m4 + timedelta(days=40), m4 + timedelta(days=100)),  # no task in it
    ]

    async def check() -> None:
        for lo, hi in ranges:
            got = await task_stats(TaskStatsQuery(created_from=lo, created_to=hi), me, deps)
            _assert_matches(got, _in(mine, lo, hi))
        # Everyone's over whole and partial months, against the tasks in the database (other tests may
        # have tasks in these months).
        for lo, hi in ranges[1:6] + ranges[11:13]:
            got = await task_stats(
                TaskStatsQuery(all_users=True, created_from=lo, created_to=hi), admin, deps
            )
            _assert_matches(got, await _scan(stack, None, lo, hi))

    await check()
    # Tasks finish, move across a month's edge and go; the month rows follow.
    async with as_system(deps.db, "pipeline") as s:
        for r in mine[:80]:
            r.update(status="succeeded", duration_ms=rng.randrange(1, 40_000))
            await s.execute(
                update(tasks)
                .where(tasks.c.id == r["id"])
                .values(status=r["status"], duration_ms=r["duration_ms"])
            )
        crossing = [r for r in mine if m2 - timedelta(days=2) <= r["created_at"] < m2]
        for r in crossing:
            r["created_at"] += timedelta(days=3)
        await s.execute(
            update(tasks)
            .where(tasks.c.id.in_([r["id"] for r in crossing]))
            .values(created_at=tasks.c.created_at + timedelta(days=3))
        )
        gone = {r["id"] for r in mine[200:260]}
        await s.execute(delete(tasks).where(tasks.c.id.in_(gone)))
    assert crossing
    mine = [r for r in mine if r["id"] not in gone]
    await check()
    assert await _scan(stack, owner, None, None) != []
    _assert_matches(await task_stats(TaskStatsQuery(), me, deps), await _scan(stack, owner, None, None))


async def test_concurrent_task_writers_neither_deadlock_nor_lose_counts(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    """Many transactions at once, each changing tasks of several days (across a month's edge) and statuses
    in its own order, pausing between statements: everyone's rollup rows are shared by all of them. None
    deadlocks or waits on another, and the statistics equal the tasks; a transaction rolled back adds nothing."""
    rng = random.Random(19)
    owner = uuid.UUID(new_user.id)
    edge = _month(rng.randrange(1972, 1992), rng.randrange(1, 13))
    days = [edge - timedelta(days=1, hours=3), edge + timedelta(hours=2), edge + timedelta(days=1, hours=9)]
    workers, rounds = 12, 4
    mine = _rows(owner, days[0], workers * 6, rng, "busy")
    for r in mine:
        r["created_at"] = rng.choice(days) + timedelta(minutes=rng.randrange(0, 600))
    await _insert(stack, mine)
    deps = h.deps(stack)
    statuses = ["queued", "running", "succeeded", "failed"]

    async def worker(w: int) -> None:
        own = mine[w * 6 : (w + 1) * 6]  # each worker changes its own tasks: only the rollups are shared
        wrng = random.Random(w)
        for n in range(rounds):
            steps = ["insert", "update", "insert", "update"]
            wrng.shuffle(steps)
            rolled_back = n == 2 and w % 3 == 0
            try:
                async with as_system(deps.db, "pipeline") as s:
                    for step in steps:
                        if step == "insert":
                            new = _rows(owner, days[0], 2, wrng, f"w{w}-{n}")
                            for r in new:
                                r["created_at"] = wrng.choice(days)
                                r["status"] = wrng.choice(statuses)
                            await s.execute(insert(tasks), new)
                        else:
                            for r in wrng.sample(own, 2):
                                await s.execute(
                                    update(tasks)
                                    .where(tasks.c.id == r["id"])
                                    .values(status=wrng.choice(statuses), duration_ms=wrng.randrange(1, 9000))
                                )
                        await asyncio.sleep(0.02)  # holding whatever this transaction locked
                    if rolled_back:
                        raise _RolledBack
            except _RolledBack:
                pass

    await asyncio.gather(*(worker(w) for w in range(workers)))
    lo, hi = days[0] - timedelta(days=1), days[-1] + timedelta(days=1)
    me, admin = h.ctx(await h.actor(stack, new_user)), h.ctx(await h.actor(stack, new_admin))
    scanned = await _scan(stack, owner, None, None)
    committed = workers * rounds - sum(1 for w in range(workers) if w % 3 == 0)
    assert len(scanned) == len(mine) + committed * 4
    _assert_matches(await task_stats(TaskStatsQuery(), me, deps), scanned)
    _assert_matches(await task_stats(TaskStatsQuery(created_from=lo, created_to=hi), me, deps), scanned)
    got = await task_stats(TaskStatsQuery(all_users=True, created_from=lo, created_to=hi), admin, deps)
    _assert_matches(got, await _scan(stack, None, lo, hi))
    # Staged changes live only inside their transaction: none is ever left committed.
    async with as_system(deps.db, "pipeline", write=False) as s:
        for table in (task_rollup_pending, task_rollup_folds):
            assert (await s.execute(select(func.count()).select_from(table))).scalar() == 0, table.name


class _RolledBack(Exception):
    pass
