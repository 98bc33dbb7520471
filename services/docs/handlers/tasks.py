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
    bindparam,
    case,
    cast,
    func,
    literal,
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
from ..tables import TASKS_OF_EVERYONE, documents, task_durations, task_rollup, tasks
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


@dataclass(frozen=True)
class _Span:
    """A statistics range as whole UTC days [lo, hi), read from the rollups, and the parts of days at its
    ends, read from the tasks themselves (at most two days' worth)."""

    whole_days: bool
    lo: date | None = None
    hi: date | None = None
    edges: tuple[tuple[ColumnElement[bool], ...], ...] = ()  # each conditions on tasks.created_at

    def days(self, day: ColumnElement[date]) -> list[ColumnElement[bool]]:
        return [*([day >= self.lo] if self.lo else []), *([day < self.hi] if self.hi else [])]


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
    return _Span(whole_days=True, lo=lo, hi=hi, edges=tuple(edges))


async def task_stats(cmd: TaskStatsQuery, ctx: Ctx, deps: DocsDeps) -> TaskStats:
    """From the rollups (kept by triggers on `tasks`, migration 0012) for the whole days in the range, and
    from the tasks for the parts of days at its ends: never a scan of the caller's history."""
    caller = await user(ctx, deps)
    t, r, h = tasks.c, task_rollup.c, task_durations.c
    scope = _task_scope(caller, cmd.all_users)
    owner = UUID(TASKS_OF_EVERYONE) if cmd.all_users else caller.user_id
    span = _span(cmd.created_from, cmd.created_to)
    utc_day = cast(func.timezone("UTC", t.created_at), Date)
    parts: list[Select[Any]] = []
    durations: list[Select[Any]] = []
    if span.whole_days:
        parts.append(
            select(
                r.day,
                r.status,
                r.kind,
                r.provider,
                r.model,
                r.tasks,
                r.timed,
                r.duration_ms,
                r.tokens_in,
                r.tokens_out,
            ).where(r.owner_id == owner, *span.days(r.day))
        )
        durations.append(select(h.bucket, h.tasks).where(h.owner_id == owner, *span.days(h.day)))
    for edge in span.edges:
        parts.append(
            select(
                utc_day.label("day"),
                t.status,
                t.kind,
                func.coalesce(t.provider, "").label("provider"),
                func.coalesce(t.model, "").label("model"),
                literal(1, BigInteger).label("tasks"),
                case((t.duration_ms.isnot(None), 1), else_=0).label("timed"),
                func.coalesce(t.duration_ms, 0).label("duration_ms"),
                func.coalesce(t.tokens_in, 0).label("tokens_in"),
                func.coalesce(t.tokens_out, 0).label("tokens_out"),
            ).where(*scope, *edge)
        )
        durations.append(
            select(
                func.duration_bucket(t.duration_ms).label("bucket"), literal(1, BigInteger).label("tasks")
            ).where(*scope, *edge, t.duration_ms.isnot(None))
        )
    src = union_all(*parts).subquery("src")
    c = src.c
    keys = (c.status, c.kind, c.provider, c.model, c.day)
    grouped = (
        select(
            *keys,
            *(func.grouping(k) for k in keys),
            func.sum(c.tasks),
            func.sum(c.timed),
            func.sum(c.duration_ms),
            func.sum(c.tokens_in),
            func.sum(c.tokens_out),
            func.coalesce(func.sum(c.tasks).filter(c.status == "succeeded"), 0),
            func.coalesce(func.sum(c.tasks).filter(c.status == "failed"), 0),
        )
        .group_by(
            func.grouping_sets(
                tuple_(c.status), tuple_(c.kind), tuple_(c.provider, c.model), tuple_(c.day), text("()")
            )
        )
        .having(func.sum(c.tasks) != 0)
    )
    hist = union_all(*durations).subquery("hist")
    histogram = select(hist.c[0], func.sum(hist.c[1])).group_by(hist.c[0]).order_by(hist.c[0])
    async with _session(deps.db, caller, cmd.all_users) as s:
        rows = (await s.execute(grouped)).all()
        buckets = [(int(b), int(n)) for b, n in (await s.execute(histogram)).all()]
    by_status: dict[Any, int] = {}
    by_kind: dict[Any, int] = {}
    providers: list[ProviderStats] = []
    days: list[DayStats] = []
    timed_all = duration_all = 0
    for row in rows:
        status, kind, provider, model, day, g_status, g_kind, g_provider, _, g_day = row[:10]
        n, timed, dur, t_in, t_out, ok, bad = row[10:]
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
        elif not g_day:
            days.append(DayStats(day=day, tasks=int(n), succeeded=int(ok), failed=int(bad)))
        else:
            timed_all, duration_all = int(timed), int(dur)
    providers.sort(key=lambda p: (p.provider, p.model or ""))
    days.sort(key=lambda d: d.day)
    return TaskStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_kind=by_kind,
        avg_duration_ms=duration_all / timed_all if timed_all else None,
        p95_duration_ms=_percentile(buckets, 0.95),
        by_provider=providers,
        by_day=days[-90:],
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
