"""A user's categories: list (with document counts), create, rename, delete; found by name for suggestions."""

from __future__ import annotations

import uuid
from uuid import UUID

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Empty, Invalid
from contracts.docs_api import CategoryCreate, CategoryList, CategoryPublic, CategoryUpdate, DocumentRef
from services.kit.bus import Ctx

from ..access import acting, readable
from ..rows import CategoryRow
from ..tables import categories, document_categories, documents
from .common import DocsDeps, owned_category, user


def _category_public(row: CategoryRow, count: int = 0) -> CategoryPublic:
    return CategoryPublic(id=row.id, name=row.name, document_count=count, created_at=row.created_at)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Invalid("A category needs a name.", [{"field": "name", "message": "empty"}])
    return cleaned


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"You already have a category named “{name}” (names are compared ignoring case).", {"field": "name"}
    )


async def category_for_name(s: AsyncSession, owner: UUID, name: str, create: bool) -> UUID | None:
    """The owner's category of that name (ignoring case), created if asked; a concurrent create wins the race."""

    def find() -> Select[UUID]:
        return select(categories.c.id).where(
            categories.c.owner_id == owner, func.lower(categories.c.name) == name.lower()
        )

    cat_id = (await s.execute(find())).scalar()
    if cat_id is None and create:
        await s.execute(
            pg_insert(categories).values(id=uuid.uuid4(), owner_id=owner, name=name).on_conflict_do_nothing()
        )
        cat_id = (await s.execute(find())).scalar()
    return cat_id


async def list_categories(_: Empty, ctx: Ctx, deps: DocsDeps) -> CategoryList:
    caller = await user(ctx, deps)
    link = document_categories.c
    # Documents the caller can still see: a shared document filed here stops counting when access ends.
    counts = (
        select(link.category_id, func.count().label("n"))
        .join(documents, documents.c.id == link.document_id)
        .where(link.owner_id == caller.user_id, readable(caller))
        .group_by(link.category_id)
        .subquery()
    )
    async with acting(deps.db, caller) as s:
        rows = (
            await s.execute(
                select(categories, func.coalesce(counts.c.n, 0).label("n"))
                .outerjoin(counts, counts.c.category_id == categories.c.id)
                .where(categories.c.owner_id == caller.user_id)
                .order_by(func.lower(categories.c.name))
            )
        ).all()
    return CategoryList(items=[_category_public(r, r.n) for r in rows])


async def create_category(cmd: CategoryCreate, ctx: Ctx, deps: DocsDeps) -> CategoryPublic:
    caller = await user(ctx, deps)
    name = _clean_name(cmd.name)
    try:
        async with acting(deps.db, caller, write=True) as s:
            row = (
                await s.execute(
                    insert(categories)
                    .values(id=uuid.uuid4(), owner_id=caller.user_id, name=name)
                    .returning(categories)
                )
            ).one()
    except IntegrityError:
        raise _name_taken(name) from None
    return _category_public(row)


async def update_category(cmd: CategoryUpdate, ctx: Ctx, deps: DocsDeps) -> CategoryPublic:
    caller = await user(ctx, deps)
    name = _clean_name(cmd.name)
    try:
        async with acting(deps.db, caller, write=True) as s:
            await owned_category(s, cmd.id, caller.user_id)
            row = (
                await s.execute(
                    update(categories)
                    .where(categories.c.id == cmd.id)
                    .values(name=name)
                    .returning(categories)
                )
            ).one()
            link = document_categories.c
            n = (
                await s.execute(
                    select(func.count())
                    .select_from(document_categories)
                    .join(documents, documents.c.id == link.document_id)
                    .where(link.category_id == cmd.id, readable(caller))
                )
            ).scalar_one()
    except IntegrityError:
        raise _name_taken(name) from None
    return _category_public(row, n)


async def delete_category(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller, write=True) as s:
        await owned_category(s, cmd.id, caller.user_id)
        await s.execute(delete(categories).where(categories.c.id == cmd.id))
    return Empty()
