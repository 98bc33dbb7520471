"""Task history and statistics (the caller's; an administrator's view of everyone's), and retrying a
failed task (a new run of its document)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Date, cast, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Forbidden, NotFound
from contracts.docs_api import (
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
from ..tables import documents, tasks
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
        conds.append(t.filename.ilike(like(cmd.filename.strip()), escape="\\"))
    page_conds = list(conds)
    if cmd.cursor:
        at, tid = decode_cursor(cmd.cursor, (datetime, UUID))
        if at is None or tid is None:
            raise invalid_cursor()
        page_conds.append(tuple_(t.created_at, t.id) < tuple_(literal(at), literal(tid)))
    async with _session(deps.db, caller, cmd.all_users) as s:
        rows = (
            await s.execute(
                select(tasks)
                .where(*page_conds)
                .order_by(t.created_at.desc(), t.id.desc())
                .limit(cmd.limit + 1)
            )
        ).all()
        total = (await s.execute(select(func.count()).select_from(tasks).where(*conds))).scalar_one()
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    cursor = encode_cursor([rows[-1].created_at, rows[-1].id]) if more and rows else None
    return TaskPage(
        items=[task_public(r, show_owner=cmd.all_users) for r in rows], total=total, next_cursor=cursor
    )


async def _counted(
    s: AsyncSession, column: ColumnElement[Any], conds: list[ColumnElement[bool]]
) -> dict[Any, int]:
    """Rows per value of the column (a status or a kind)."""
    rows = (await s.execute(select(column, func.count()).where(*conds).group_by(column))).all()
    return {value: n for value, n in rows}


async def task_stats(cmd: TaskStatsQuery, ctx: Ctx, deps: DocsDeps) -> TaskStats:
    caller = await user(ctx, deps)
    t = tasks.c
    conds = _task_scope(caller, cmd.all_users)
    if cmd.created_from:
        conds.append(t.created_at >= cmd.created_from)
    if cmd.created_to:
        conds.append(t.created_at <= cmd.created_to)
    async with _session(deps.db, caller, cmd.all_users) as s:
        by_status = await _counted(s, t.status, conds)
        by_kind = await _counted(s, t.kind, conds)
        avg, p95 = (
            await s.execute(
                select(func.avg(t.duration_ms), func.percentile_cont(0.95).within_group(t.duration_ms)).where(
                    *conds, t.duration_ms.isnot(None)
                )
            )
        ).one()
        providers = (
            await s.execute(
                select(
                    t.provider,
                    t.model,
                    func.count(),
                    func.coalesce(func.sum(t.tokens_in), 0),
                    func.coalesce(func.sum(t.tokens_out), 0),
                    func.avg(t.duration_ms),
                )
                .where(*conds, t.provider.isnot(None))
                .group_by(t.provider, t.model)
                .order_by(t.provider, t.model)
            )
        ).all()
        day = func.date_trunc("day", t.created_at)
        days = (
            await s.execute(
                select(
                    cast(day, Date),
                    func.count(),
                    func.count().filter(t.status == "succeeded"),
                    func.count().filter(t.status == "failed"),
                )
                .where(*conds)
                .group_by(day)
                .order_by(day.desc())
                .limit(90)
            )
        ).all()
    return TaskStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_kind=by_kind,
        avg_duration_ms=float(avg) if avg is not None else None,
        p95_duration_ms=float(p95) if p95 is not None else None,
        by_provider=[
            ProviderStats(
                provider=p,
                model=m,
                tasks=n,
                tokens_in=ti,
                tokens_out=to,
                avg_duration_ms=float(a) if a is not None else None,
            )
            for p, m, n, ti, to, a in providers
        ],
        by_day=[DayStats(day=d, tasks=n, succeeded=ok, failed=bad) for d, n, ok, bad in reversed(days)],
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
