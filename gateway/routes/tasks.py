"""`/api/v1/tasks`: processing history, statistics, export and retry."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from contracts import docs_api as api

from ..bus import Call
from ..transport import Token
from .documents import query_model

router = APIRouter(prefix="/tasks", tags=["documents"])

EXPORT_MAX_ROWS = 100_000
EXPORT_PAGE = 500


@router.get("", response_model=api.TaskPage, summary="Your tasks (admins: all_users=true for everyone's)")
async def list_tasks(request: Request, call: Call, token: Token) -> api.TaskPage:
    return await call(api.TASK_LIST, query_model(request, api.ListTasks), token=token)


@router.get("/stats", response_model=api.TaskStats, summary="Counts, durations, providers and days")
async def stats(request: Request, call: Call, token: Token) -> api.TaskStats:
    return await call(api.TASK_STATS, query_model(request, api.TaskStatsQuery), token=token)


@router.get("/export", summary="Export the filtered task history as CSV or JSON")
async def export(
    request: Request, call: Call, token: Token, format: Literal["csv", "json"] = "csv"
) -> StreamingResponse:
    query = query_model(request, api.ListTasks, limit=EXPORT_PAGE)
    query.pop("format", None)
    first: api.TaskPage = await call(
        api.TASK_LIST, query, token=token
    )  # errors surface before streaming starts

    async def rows() -> AsyncIterator[dict[str, Any]]:
        page, sent = first, 0
        while True:
            for item in page.items:
                if sent >= EXPORT_MAX_ROWS:
                    return
                sent += 1
                yield item.model_dump(mode="json")
            if not page.next_cursor:
                return
            page = await call(api.TASK_LIST, {**query, "cursor": page.next_cursor}, token=token)

    columns = list(api.TaskPublic.model_fields)

    async def as_csv() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        async for row in rows():
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    async def as_json() -> AsyncIterator[str]:
        yield "["
        sep = ""
        async for row in rows():
            yield sep + json.dumps(row)
            sep = ","
        yield "]"

    name = f"tasks.{format}"
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return StreamingResponse(
        as_csv() if format == "csv" else as_json(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet; a leading quote keeps it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.post("/{task_id}/retry", response_model=api.TaskPublic, summary="Retry a failed task (a new run)")
async def retry(task_id: UUID, call: Call, token: Token) -> api.TaskPublic:
    return await call(api.TASK_RETRY, api.TaskRef(id=task_id), token=token)
