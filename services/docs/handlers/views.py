"""Rows as the public models a reply carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.docs_api import CategoryRefPublic, DocumentSummary, EditableField, FieldValue, TaskPublic

from ..rows import SummaryRow, TaskRow
from ..tables import categories, document_categories
from .common import DocsDeps


def fields_public(raw: dict[str, dict[str, Any]]) -> dict[EditableField, FieldValue]:
    return {EditableField(k): FieldValue.model_validate(v) for k, v in (raw or {}).items()}


async def categories_of(s: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, list[CategoryRefPublic]]:
    out: dict[UUID, list[CategoryRefPublic]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await s.execute(
        select(
            document_categories.c.document_id,
            categories.c.id,
            categories.c.name,
            document_categories.c.source,
        )
        .join(categories, categories.c.id == document_categories.c.category_id)
        .where(document_categories.c.document_id.in_(list(ids)))
        .order_by(func.lower(categories.c.name))
    )
    for r in rows:
        out[r.document_id].append(CategoryRefPublic(id=r.id, name=r.name, source=r.source))
    return out


def summary(
    row: SummaryRow, cats: list[CategoryRefPublic], rank: float | None = None, snippet: str | None = None
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
    )


async def summaries(deps: DocsDeps, rows: Sequence[SummaryRow]) -> list[DocumentSummary]:
    async with deps.db.session() as s:
        cats = await categories_of(s, [r.id for r in rows])
    return [summary(r, cats[r.id]) for r in rows]


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
