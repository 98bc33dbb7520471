"""Rows as the public models a reply carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.docs_api import (
    AccessRole,
    CategoryRefPublic,
    DocumentSummary,
    EditableField,
    FieldValue,
    PersonPublic,
    TaskPublic,
)

from ..access import Caller
from ..rows import SummaryRow, TaskRow
from ..tables import categories, directory, document_categories


def fields_public(raw: dict[str, dict[str, Any]]) -> dict[EditableField, FieldValue]:
    return {EditableField(k): FieldValue.model_validate(v) for k, v in (raw or {}).items()}


# Built once (building it cost more CPU than running it); the ids are one expanding parameter.
_CATEGORIES_OF = (
    select(
        document_categories.c.document_id, categories.c.id, categories.c.name, document_categories.c.source
    )
    .join(categories, categories.c.id == document_categories.c.category_id)
    .where(
        document_categories.c.document_id.in_(bindparam("ids", expanding=True)),
        categories.c.owner_id == bindparam("filed_by"),
    )
    .order_by(func.lower(categories.c.name))
)


async def categories_of(
    s: AsyncSession, ids: Sequence[UUID], filed_by: UUID
) -> dict[UUID, list[CategoryRefPublic]]:
    """The categories `filed_by` filed each document under (categories are personal, whoever owns it)."""
    out: dict[UUID, list[CategoryRefPublic]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await s.execute(_CATEGORIES_OF, {"ids": list(ids), "filed_by": filed_by})
    for r in rows:
        out[r.document_id].append(CategoryRefPublic(id=r.id, name=r.name, source=r.source))
    return out


async def people(s: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, PersonPublic]:
    """Users as sharing shows them (from the directory the service keeps; unknown ones with their id only)."""
    found = {i: PersonPublic(id=i) for i in ids}
    if ids:
        d = directory.c
        for r in await s.execute(select(d.user_id, d.email, d.name).where(d.user_id.in_(list(ids)))):
            found[r.user_id] = PersonPublic(id=r.user_id, email=r.email, name=r.name)
    return found


def summary(
    row: SummaryRow,
    cats: list[CategoryRefPublic],
    rank: float | None = None,
    snippet: str | None = None,
    *,
    role: AccessRole = "owner",
    shared_by: PersonPublic | None = None,
) -> DocumentSummary:
    return DocumentSummary(
        id=row.id,
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        status=row.status,
        failure_reason=row.failure_reason,
        failure_message=row.failure_message,
        duplicate_of=row.duplicate_of,
        page_count=row.page_count,
        document_type=row.document_type,
        title=row.title,
        document_date=row.document_date,
        sender=row.sender,
        total_amount=row.total_amount,
        currency=row.currency,
        categories=cats,
        uploaded_at=row.created_at,
        updated_at=row.updated_at,
        run_id=row.run_id,
        rank=rank,
        snippet=snippet,
        role=role,
        shared_by=shared_by,
    )


async def summary_of(s: AsyncSession, row: SummaryRow, role: AccessRole, caller: Caller) -> DocumentSummary:
    """One document's summary as the caller sees it: their own categories, their role, its owner."""
    cats = await categories_of(s, [row.id], caller.user_id)
    shared_by = None if role == "owner" else (await people(s, [row.owner_id]))[row.owner_id]
    return summary(row, cats[row.id], role=role, shared_by=shared_by)


def task_public(r: TaskRow, show_owner: bool = False) -> TaskPublic:
    return TaskPublic(
        id=r.id,
        document_id=r.document_id,
        filename=r.filename,
        run_id=r.run_id,
        kind=r.kind,
        status=r.status,
        attempt=r.attempt,
        worker=r.worker,
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_ms=r.duration_ms,
        error=r.error,
        reason=r.reason,
        provider=r.provider,
        model=r.model,
        tokens_in=r.tokens_in,
        tokens_out=r.tokens_out,
        owner_id=r.owner_id if show_owner else None,
    )
