"""`/api/v1/tasks`: processing history, statistics, export and retry."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from contracts import docs_api as api

from ..bus import Call
from ..errors import errors
from ..http_types import CommaLists
from ..transport import Token

router = APIRouter(prefix="/tasks", tags=["documents"], responses=errors(401, 403))

EXPORT_MAX_ROWS = 100_000
EXPORT_PAGE = 500


class ListTasksQuery(CommaLists, api.ListTasks):
    """`GET /tasks`'s query string: the contract's filters, page size and cursor."""


class ExportTasksQuery(CommaLists, api.TaskFilter):
    """`GET /tasks/export`'s query string: the filters of `GET /tasks` (every page) and the format."""

    format: Literal["csv", "json"] = "csv"


@router.get("", response_model=api.TaskPage, summary="Your tasks (admins: all_users=true for everyone's)")
async def list_tasks(query: Annotated[ListTasksQuery, Query()], call: Call, token: Token) -> api.TaskPage:
    return await call(api.TASK_LIST, query, token=token)


@router.get("/stats", response_model=api.TaskStats, summary="Counts, durations, providers and days")
async def stats(query: Annotated[api.TaskStatsQuery, Query()], call: Call, token: Token) -> api.TaskStats:
    return await call(api.TASK_STATS, query, token=token)


EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`format=csv`: a header row, then one row per task; `format=json`: an array of tasks.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/TaskPublic"}}
            },
        },
    }
}


@router.get(
    "/export",
    summary="Export the filtered task history as CSV or JSON",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
async def export(query: Annotated[ExportTasksQuery, Query()], call: Call, token: Token) -> StreamingResponse:
    format = query.format
    filters = query.model_dump(exclude_unset=True, exclude={"format"})
    first: api.TaskPage = await call(
        api.TASK_LIST, api.ListTasks(**filters, limit=EXPORT_PAGE), token=token
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
            following = api.ListTasks(**filters, limit=EXPORT_PAGE, cursor=page.next_cursor)
            page = await call(api.TASK_LIST, following, token=token)

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


@router.post(
    "/{task_id}/retry",
    response_model=api.TaskPublic,
    summary="Retry a failed task (a new run)",
    responses=errors(404, 409),
)
async def retry(task_id: UUID, call: Call, token: Token) -> api.TaskPublic:
    return await call(api.TASK_RETRY, api.TaskRef(id=task_id), token=token)
