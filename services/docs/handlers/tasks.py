"""Task history and statistics (the caller's; an administrator's view of everyone's), and retrying a
failed task (a new run of its document)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from contracts import Conflict, Forbidden, NotFound
from contracts.docs_api import (
    TASK_TOTAL_CAP,
    DayStats,
    ListTasks,
    ProviderStats,
    TaskPage,
    TaskPublic,
    TaskRef,
    TaskStats,
    TaskStatsQuery,
)
from services.kit.bus import Ctx
from services.kit.cursor import decode_cursor, encode_cursor, invalid_cursor
from services.kit.db import Database

from ..access import Caller, acting, as_admin, readable
from ..tables import (
    TASKS_OF_EVERYONE,
    documents,
    task_durations,
    task_durations_month,
    task_rollup,
    task_rollup_month,
    tasks,
)
from .common import DocsDeps, user
from .runs import reprocess_one
from .search import like
from .views import task_public


def _task_scope(caller: Caller, all_users: bool) -> list[ColumnElement[bool]]:
    """The caller's tasks (those of their own documents); an administrator's view of everyone's."""
    if all_users:
        if not caller.is_admin:
            raise Forbidden("Only administrators can see everyone's tasks.")
        return []
    return [tasks.c.owner_id == caller.user_id]


def _session(db: Database, caller: Caller, all_users: bool) -> AbstractAsyncContextManager[AsyncSession]:
    return as_admin(db, caller) if all_users else acting(db, caller)


async def list_tasks(cmd: ListTasks, ctx: Ctx, deps: DocsDeps) -> TaskPage:
    caller = await user(ctx, deps)
    t = tasks.c
    conds = _task_scope(caller, cmd.all_users)
    if cmd.status:
        conds.append(t.status.in_(cmd.status))
    if cmd.kind:
        conds.append(t.kind.in_(cmd.kind))
    if cmd.created_from:
        conds.append(t.created_at >= cmd.created_from)
    if cmd.created_to:
        conds.append(t.created_at <= cmd.created_to)
    if cmd.filename:
        # The pattern written into the statement: a generic plan (a prepared statement's, after five runs)
        # cannot tell a rare substring (the trigram index) from one in every name (the newest-first index).
        pattern: BindParameter[str] = bindparam("filename", like(cmd.filename.strip()), literal_execute=True)
        conds.append(t.filename.ilike(pattern, escape="\\"))
    page_conds = list(conds)
    if cmd.cursor:
        at, tid = decode_cursor(cmd.cursor, (datetime, UUID))
        if at is None or tid is None:
            raise invalid_cursor()
        page_conds.append(tuple_(t.created_at, t.id) < tuple_(literal(at), literal(tid)))
    # Counted up to the cap (the matches' first TASK_TOTAL_CAP + 1 rows, never all of a million), in the
    # page's own statement: evaluated once, and one round trip fewer.
    first = select(literal(1)).select_from(tasks).where(*conds).limit(TASK_TOTAL_CAP + 1).subquery()
    counted = select(func.count()).select_from(first)
    async with _session(deps.db, caller, cmd.all_users) as s:
        rows = (
            await s.execute(
                select(tasks, counted.scalar_subquery().label("matched"))
                .where(*page_conds)
                .order_by(t.created_at.desc(), t.id.desc())
                .limit(cmd.limit + 1)
            )
        ).all()
        total = rows[0].matched if rows else (await s.execute(counted)).scalar_one() if cmd.cursor else 0
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    cursor = encode_cursor([rows[-1].created_at, rows[-1].id]) if more and rows else None
    return TaskPage(
        items=[task_public(r, show_owner=cmd.all_users) for r in rows],
        total=min(total, TASK_TOTAL_CAP),
        total_capped=total > TASK_TOTAL_CAP,
        next_cursor=cursor,
    )


# Durations are counted in buckets 10 % wide (`docs.duration_bucket`, migration 0012): bucket 0 holds 0 ms,
# bucket b >= 1 [1.1^(b-1), 1.1^b) ms, read as its geometric middle (within 5 %).
DURATION_BUCKET_RATIO = 1.1
# The statistics' days: the newest days with tasks in the range.
DAYS_SHOWN = 90


def _bucket_ms(bucket: int) -> float:
    return 0.0 if bucket <= 0 else DURATION_BUCKET_RATIO ** (bucket - 0.5)


def _percentile(buckets: list[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (as percentile_cont ranks it) of durations counted per bucket, in bucket order."""
    n = sum(count for _, count in buckets)
    if n <= 0:
        return None
    rank, seen = q * (n - 1), 0
    for bucket, count in buckets:
        seen += count
        if seen > rank:
            return _bucket_ms(bucket)
    return _bucket_ms(buckets[-1][0])


def _utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class _Span:
    """A statistics range: whole UTC months [months_from, months_to) read from the month rollups, the other
    whole UTC days [lo, hi) from the day rollups (`day_ranges`: at most one run of days at each end), and the
    parts of days at its ends from the tasks themselves (at most two days' worth). None is open-ended."""

    whole_days: bool
    lo: date | None = None
    hi: date | None = None
    months: tuple[date | None, date | None] | None = None
    day_ranges: tuple[tuple[date | None, date | None], ...] = ()
    edges: tuple[tuple[ColumnElement[bool], ...], ...] = ()  # each conditions on tasks.created_at


def _between(at: ColumnElement[date], lo: date | None, hi: date | None) -> list[ColumnElement[bool]]:
    return [*([at >= lo] if lo else []), *([at < hi] if hi else [])]


def _span(created_from: datetime | None, created_to: datetime | None) -> _Span:
    at = tasks.c.created_at
    lo = hi = None
    if created_from is not None:
        lo = _utc_day(created_from)
        if _day_start(lo) < created_from:
            lo += timedelta(days=1)
    if created_to is not None:
        hi = _utc_day(created_to)  # exclusive: created_to's own day is a part
    if lo is not None and hi is not None and lo >= hi:
        return _Span(whole_days=False, edges=((at >= created_from, at <= created_to),))
    edges: list[tuple[ColumnElement[bool], ...]] = []
    if lo is not None and created_from is not None and created_from < _day_start(lo):
        edges.append((at >= created_from, at < _day_start(lo)))
    if hi is not None and created_to is not None:
        edges.append((at >= _day_start(hi), at <= created_to))
    m_lo = None if lo is None else lo if lo.day == 1 else _month_after(lo)
    m_hi = None if hi is None else hi.replace(day=1)
    if m_lo is not None and m_hi is not None and m_lo >= m_hi:
        return _Span(whole_days=True, lo=lo, hi=hi, day_ranges=((lo, hi),), edges=tuple(edges))
    day_ranges = [
        *([(lo, m_lo)] if lo is not None and m_lo is not None and lo < m_lo else []),
        *([(m_hi, hi)] if hi is not None and m_hi is not None and m_hi < hi else []),
    ]
    return _Span(
        whole_days=True, lo=lo, hi=hi, months=(m_lo, m_hi), day_ranges=tuple(day_ranges), edges=tuple(edges)
    )


def _rollup_sums(table: Any, *where: ColumnElement[bool]) -> Select[Any]:
    c = table.c
    return select(
        c.status, c.kind, c.provider, c.model, c.tasks, c.timed, c.duration_ms, c.tokens_in, c.tokens_out
    ).where(*where)


async def task_stats(cmd: TaskStatsQuery, ctx: Ctx, deps: DocsDeps) -> TaskStats:
    """From the rollups (kept by triggers on `tasks`, migrations 0012 and 0013) for the whole months and
    days in the range, and from the tasks for the parts of days at its ends: never a scan of the caller's
    history. The days (the last 90 with tasks) come from the day rollup, newest first, read no further."""
    caller = await user(ctx, deps)
    t, r, m = tasks.c, task_rollup.c, task_rollup_month.c
    h, hm = task_durations.c, task_durations_month.c
    scope = _task_scope(caller, cmd.all_users)
    owner = UUID(TASKS_OF_EVERYONE) if cmd.all_users else caller.user_id
    span = _span(cmd.created_from, cmd.created_to)
    utc_day = cast(func.timezone("UTC", t.created_at), Date)
    parts: list[Select[Any]] = []
    durations: list[Select[Any]] = []
    day_parts: list[Any] = []
    if span.months is not None:
        parts.append(_rollup_sums(task_rollup_month, m.owner_id == owner, *_between(m.month, *span.months)))
        durations.append(
            select(hm.bucket, hm.tasks).where(hm.owner_id == owner, *_between(hm.month, *span.months))
        )
    for run in span.day_ranges:
        parts.append(_rollup_sums(task_rollup, r.owner_id == owner, *_between(r.day, *run)))
        durations.append(select(h.bucket, h.tasks).where(h.owner_id == owner, *_between(h.day, *run)))
    if span.whole_days:
        # Grouped by day in the index's order, newest first: at most the 90 days shown are read.
        day_parts.append(
            select(
                r.day,
                func.sum(r.tasks).label("tasks"),
                func.coalesce(func.sum(r.tasks).filter(r.status == "succeeded"), 0).label("succeeded"),
                func.coalesce(func.sum(r.tasks).filter(r.status == "failed"), 0).label("failed"),
            )
            .where(r.owner_id == owner, *_between(r.day, span.lo, span.hi))
            .group_by(r.day)
            .having(func.sum(r.tasks) != 0)
            .order_by(r.day.desc())
            .limit(DAYS_SHOWN)
        )
    if span.edges:
        # The parts of days at the ends, read from the tasks once (the tasks' row-level security planned
        # once), then counted three ways.
        e = (
            select(
                utc_day.label("day"),
                t.status,
                t.kind,
                func.coalesce(t.provider, "").label("provider"),
                func.coalesce(t.model, "").label("model"),
                t.duration_ms,
                func.coalesce(t.tokens_in, 0).label("tokens_in"),
                func.coalesce(t.tokens_out, 0).label("tokens_out"),
            )
            .where(*scope, or_(*(and_(*edge) for edge in span.edges)))
            .cte("edge_tasks")
            .c
        )
        parts.append(
            select(
                e.status,
                e.kind,
                e.provider,
                e.model,
                literal(1, BigInteger).label("tasks"),
                case((e.duration_ms.isnot(None), 1), else_=0).label("timed"),
                func.coalesce(e.duration_ms, 0).label("duration_ms"),
                e.tokens_in,
                e.tokens_out,
            )
        )
        durations.append(
            select(
                func.duration_bucket(e.duration_ms).label("bucket"), literal(1, BigInteger).label("tasks")
            ).where(e.duration_ms.isnot(None))
        )
        day_parts.append(
            select(
                e.day,
                func.count().label("tasks"),
                func.count().filter(e.status == "succeeded").label("succeeded"),
                func.count().filter(e.status == "failed").label("failed"),
            ).group_by(e.day)
        )
    src = union_all(*parts).subquery("src")
    c = src.c
    keys = (c.status, c.kind, c.provider, c.model)
    hist = union_all(*durations).subquery("hist")
    by_day = union_all(*(select(p.subquery()) for p in day_parts)).subquery("by_day")
    # One statement, one round trip: the totals (grouping sets), the duration histogram and the days,
    # told apart by `part` (columns another part does not use are NULL).
    none_s, none_i, none_d = cast(null(), String), cast(null(), BigInteger), cast(null(), Date)
    grouped = (
        select(
            literal(0).label("part"),
            *keys,
            *(func.grouping(k) for k in keys[:3]),
            func.sum(c.tasks),
            func.sum(c.timed),
            func.sum(c.duration_ms),
            func.sum(c.tokens_in),
            func.sum(c.tokens_out),
            none_d,
        )
        .group_by(
            func.grouping_sets(tuple_(c.status), tuple_(c.kind), tuple_(c.provider, c.model), text("()"))
        )
        .having(func.sum(c.tasks) != 0)
    )
    keys_null = (none_s,) * 4 + (none_i,) * 3  # the totals' keys and grouping flags

    def padded(part: int, *sums: Any, day: Any = none_d) -> Select[Any]:
        return select(literal(part), *keys_null, *sums, *(none_i,) * (5 - len(sums)), day)

    histogram = padded(1, cast(hist.c[0], BigInteger), func.sum(hist.c[1])).group_by(hist.c[0])
    days_part = padded(2, by_day.c.tasks, by_day.c.succeeded, by_day.c.failed, day=by_day.c.day).where(
        by_day.c.tasks != 0
    )
    async with _session(deps.db, caller, cmd.all_users) as s:
        result: list[Any] = list((await s.execute(union_all(grouped, histogram, days_part))).all())
    rows = [r[1:] for r in result if r[0] == 0]
    buckets = sorted((int(r[8]), int(r[9])) for r in result if r[0] == 1)
    day_rows = [(r[13], r[8], r[9], r[10]) for r in result if r[0] == 2]
    by_status: dict[Any, int] = {}
    by_kind: dict[Any, int] = {}
    providers: list[ProviderStats] = []
    timed_all = duration_all = 0
    for row in rows:
        status, kind, provider, model, g_status, g_kind, g_provider = row[:7]
        n, timed, dur, t_in, t_out = row[7:12]
        if not g_status:
            by_status[status] = int(n)
        elif not g_kind:
            by_kind[kind] = int(n)
        elif not g_provider:
            if provider:
                providers.append(
                    ProviderStats(
                        provider=provider,
                        model=model or None,
                        tasks=int(n),
                        tokens_in=int(t_in),
                        tokens_out=int(t_out),
                        avg_duration_ms=float(dur) / float(timed) if timed else None,
                    )
                )
        else:
            timed_all, duration_all = int(timed), int(dur)
    providers.sort(key=lambda p: (p.provider, p.model or ""))
    # The rollup's days and the partial days at the ends are different days: the newest 90 of both.
    days = sorted(
        (DayStats(day=d, tasks=int(n), succeeded=int(ok), failed=int(bad)) for d, n, ok, bad in day_rows),
        key=lambda d: d.day,
    )
    return TaskStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_kind=by_kind,
        avg_duration_ms=duration_all / timed_all if timed_all else None,
        p95_duration_ms=_percentile(buckets, 0.95),
        by_provider=providers,
        by_day=days[-DAYS_SHOWN:],
    )


async def retry_task(cmd: TaskRef, ctx: Ctx, deps: DocsDeps) -> TaskPublic:
    """A failed task's document runs again: by its owner, or an editor of a document shared with them."""
    caller = await user(ctx, deps)
    t = tasks.c
    visible = or_(
        t.owner_id == caller.user_id, t.document_id.in_(select(documents.c.id).where(readable(caller)))
    )
    async with acting(deps.db, caller) as s:
        row = (await s.execute(select(tasks).where(t.id == cmd.id, visible))).first()
        if row is None:
            raise NotFound("There is no such task.", {"id": str(cmd.id)})
        current = (
            await s.execute(select(documents.c.run_id).where(documents.c.id == row.document_id))
        ).scalar()
    if row.status != "failed":
        raise Conflict(f"Only a failed task can be retried; this one is {row.status}.")
    if row.document_id is None or current is None:
        raise Conflict("The document of this task was deleted, so it cannot be retried.")
    if current != row.run_id:
        raise Conflict("This document was re-processed since this task; see its newest task.")
    doc, _ = await reprocess_one(row.document_id, caller, ctx, deps)
    async with acting(deps.db, caller) as s:
        new = (await s.execute(select(tasks).where(t.run_id == doc.run_id, t.stage == "extract"))).one()
    return task_public(new)
