"""One action over many documents, chosen by ids or by a list filter: each document succeeds or fails on
its own, and the reply says which."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Invalid
from contracts.base import AtriumError
from contracts.docs_api import BulkAction, BulkItem, BulkResult
from services.kit.bus import Ctx
from services.kit.security import Actor

from ..tables import document_categories, documents
from .common import DocsDeps, owned, owned_category, user
from .files import delete_one
from .runs import reprocess_one
from .search import filter_conditions

BULK_FILTER_LIMIT = 1000


async def _chosen(cmd: BulkAction, actor: Actor, deps: DocsDeps) -> list[UUID]:
    async with deps.db.session() as s:
        if cmd.category_id is not None:
            await owned_category(s, cmd.category_id, actor.user_id)
        if cmd.filter is not None:
            return list(
                (
                    await s.execute(
                        select(documents.c.id)
                        .where(*filter_conditions(cmd.filter, actor.user_id))
                        .order_by(documents.c.created_at)
                        .limit(BULK_FILTER_LIMIT)
                    )
                ).scalars()
            )
        if cmd.ids:
            return list(dict.fromkeys(cmd.ids))
        raise Invalid("Send ids or a filter to choose the documents.")


async def _categorise(cmd: BulkAction, doc_id: UUID, actor: Actor, deps: DocsDeps) -> None:
    async with deps.db.transaction() as s:
        await owned(s, doc_id, actor.user_id)
        link = document_categories.c
        if cmd.action == "assign_category":
            await s.execute(
                pg_insert(document_categories)
                .values(document_id=doc_id, category_id=cmd.category_id, source="user")
                .on_conflict_do_update(
                    index_elements=[link.document_id, link.category_id], set_={"source": "user"}
                )
            )
        else:
            await s.execute(
                delete(document_categories).where(
                    link.document_id == doc_id, link.category_id == cmd.category_id
                )
            )


async def bulk(cmd: BulkAction, ctx: Ctx, deps: DocsDeps) -> BulkResult:
    actor = await user(ctx, deps)
    if cmd.ids and cmd.filter is not None:
        raise Invalid("Send either ids or filter, not both.")
    if cmd.action in ("assign_category", "remove_category") and cmd.category_id is None:
        raise Invalid(f"{cmd.action} needs category_id.", [{"field": "category_id", "message": "required"}])
    results: list[BulkItem] = []
    for doc_id in await _chosen(cmd, actor, deps):
        try:
            if cmd.action == "delete":
                await delete_one(doc_id, actor, ctx, deps)
            elif cmd.action == "reprocess":
                await reprocess_one(doc_id, actor, ctx, deps)
            else:
                await _categorise(cmd, doc_id, actor, deps)
            results.append(BulkItem(id=doc_id, ok=True))
        except AtriumError as err:
            results.append(BulkItem(id=doc_id, ok=False, code=err.code.value, message=err.message))
    ok = sum(r.ok for r in results)
    return BulkResult(action=cmd.action, results=results, succeeded=ok, failed=len(results) - ok)
