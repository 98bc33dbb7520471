"""One action over many documents, chosen by ids or by a list filter: each document succeeds or fails on
its own, and the reply says which. A filter chooses among the documents the caller may act on that way
(delete: their own; re-process: their own and those they edit; filing: every one they can see)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Invalid
from contracts.base import AtriumError
from contracts.docs_api import AccessRole, BulkAction, BulkItem, BulkResult
from services.kit.bus import Ctx

from ..access import Caller, acting, may
from ..tables import document_categories, documents
from .common import DocsDeps, document_for, owned_category, user
from .files import delete_one
from .runs import reprocess_one
from .search import access_condition, filter_conditions

BULK_FILTER_LIMIT = 1000
NEEDS: dict[str, AccessRole] = {"delete": "owner", "reprocess": "editor"}


async def _chosen(cmd: BulkAction, caller: Caller, deps: DocsDeps) -> list[UUID]:
    async with acting(deps.db, caller) as s:
        if cmd.category_id is not None:
            await owned_category(s, cmd.category_id, caller.user_id)
        if cmd.filter is not None:
            need = NEEDS.get(cmd.action, "viewer")
            conds = filter_conditions(cmd.filter, access_condition(cmd.filter.scope, caller))
            return list(
                (
                    await s.execute(
                        select(documents.c.id)
                        .where(*conds, may(caller, need))
                        .order_by(documents.c.created_at)
                        .limit(BULK_FILTER_LIMIT)
                    )
                ).scalars()
            )
        if cmd.ids:
            return list(dict.fromkeys(cmd.ids))
        raise Invalid("Send ids or a filter to choose the documents.")


async def _categorise(cmd: BulkAction, doc_id: UUID, caller: Caller, deps: DocsDeps) -> None:
    """File the document under (or take it out of) one of the caller's own categories: any document they
    can see, theirs or shared with them (categories are personal)."""
    async with acting(deps.db, caller, write=True) as s:
        await document_for(s, doc_id, caller, "viewer")
        link = document_categories.c
        if cmd.action == "assign_category":
            await s.execute(
                pg_insert(document_categories)
                .values(
                    document_id=doc_id, category_id=cmd.category_id, source="user", owner_id=caller.user_id
                )
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
    caller = await user(ctx, deps)
    if cmd.ids and cmd.filter is not None:
        raise Invalid("Send either ids or filter, not both.")
    if cmd.action in ("assign_category", "remove_category") and cmd.category_id is None:
        raise Invalid(f"{cmd.action} needs category_id.", [{"field": "category_id", "message": "required"}])
    results: list[BulkItem] = []
    for doc_id in await _chosen(cmd, caller, deps):
        try:
            if cmd.action == "delete":
                await delete_one(doc_id, caller, ctx, deps)
            elif cmd.action == "reprocess":
                await reprocess_one(doc_id, caller, ctx, deps)
            else:
                await _categorise(cmd, doc_id, caller, deps)
            results.append(BulkItem(id=doc_id, ok=True))
        except AtriumError as err:
            results.append(BulkItem(id=doc_id, ok=False, code=err.code.value, message=err.message))
    ok = sum(r.ok for r in results)
    return BulkResult(action=cmd.action, results=results, succeeded=ok, failed=len(results) - ok)
