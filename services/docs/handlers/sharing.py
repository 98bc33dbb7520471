"""Sharing a document, or a category (every document its owner files under it, now and later), with a user
(found by exact email in the directory this service keeps) or a group (from the permissions service), as a
viewer or an editor; who has access; taking a share back. Only the owner manages access, or an
administrator, whose every change is audited as such."""

from __future__ import annotations

import uuid
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, Forbidden, Invalid, NotFound
from contracts.docs_api import PersonPublic
from contracts.sharing import (
    GranteeRef,
    ShareGrant,
    ShareGroup,
    ShareList,
    SharePublic,
    ShareRef,
    ShareTarget,
)
from services.kit.audit import record_audit
from services.kit.bus import Ctx
from services.kit.ratelimit import Rule, SharedRateLimiter

from ..access import Caller, acting, as_admin, read_document_row
from ..rows import AnyRow
from ..tables import audit_log, categories, directory, document_categories, documents, rate_limits, shares
from .common import DocsDeps, owned_category, user
from .views import people

# Sharing by email answers whether an active account has that address, so a stranger's guesses are counted:
# a user may ask about this many addresses that have no account per window (known ones are not counted),
# across every documents process.
LOOKUPS = SharedRateLimiter(rate_limits, {"unknown_email": Rule(20, 600)})


def _share_public(
    r: AnyRow, who: dict[UUID, PersonPublic], groups: dict[UUID, str], *, category_names: bool
) -> SharePublic:
    is_user = r.grantee_type == "user"
    return SharePublic(
        id=r.id,
        role=r.role,
        user=who.get(r.grantee_id, PersonPublic(id=r.grantee_id)) if is_user else None,
        group=None if is_user else ShareGroup(id=r.grantee_id, name=groups.get(r.grantee_id)),
        via="category" if r.category_id is not None else "document",
        category_id=r.category_id,
        category_name=getattr(r, "category_name", None) if category_names else None,
        created_at=r.created_at,
    )


async def _shares_public(
    s: AsyncSession, rows: list[AnyRow], caller: Caller, deps: DocsDeps, *, category_names: bool = True
) -> list[SharePublic]:
    who = await people(s, [r.grantee_id for r in rows if r.grantee_type == "user"])
    groups = await deps.group_names(caller.actor) if any(r.grantee_type == "group" for r in rows) else {}
    return [_share_public(r, who, groups, category_names=category_names) for r in rows]


async def list_shares(cmd: ShareTarget, ctx: Ctx, deps: DocsDeps) -> ShareList:
    """Who has access: for its owner (or an administrator) every share of the document — its own and those
    of the owner's categories it is filed under — or of the category; for someone it is shared with, the
    owner and the shares that reach them."""
    caller = await user(ctx, deps)
    s_ = shares.c
    if cmd.category_id is not None:
        async with acting(deps.db, caller) as s:
            await owned_category(s, cmd.category_id, caller.user_id)
            rows = (
                await s.execute(
                    select(shares).where(s_.category_id == cmd.category_id).order_by(s_.created_at)
                )
            ).all()
            return ShareList(
                owner=(await people(s, [caller.user_id]))[caller.user_id],
                role="owner",
                can_manage=True,
                shares=await _shares_public(s, list(rows), caller, deps),
            )
    doc_id = cmd.document_id
    assert doc_id is not None
    async with acting(deps.db, caller) as s:
        row = await read_document_row(s, doc_id, caller)
        if row is not None and row.access_role != "owner":
            mine = set(caller.principals)
            reaching = [r for r in await _document_shares(s, doc_id, row.owner_id) if r.grantee_id in mine]
            return ShareList(
                owner=(await people(s, [row.owner_id]))[row.owner_id],
                role=row.access_role,
                can_manage=False,
                # The owner's category names are theirs.
                shares=await _shares_public(s, reaching, caller, deps, category_names=False),
            )
    if row is not None:
        session = acting(deps.db, caller)
    elif caller.is_admin:
        session = as_admin(deps.db, caller)
    else:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    async with session as s:
        owner_id = (await s.execute(select(documents.c.owner_id).where(documents.c.id == doc_id))).scalar()
        if owner_id is None:
            raise NotFound("There is no such document.", {"id": str(doc_id)})
        rows = await _document_shares(s, doc_id, owner_id)
        return ShareList(
            owner=(await people(s, [owner_id]))[owner_id],
            role="owner" if owner_id == caller.user_id else None,
            can_manage=True,
            shares=await _shares_public(s, rows, caller, deps),
        )


async def _document_shares(s: AsyncSession, doc_id: UUID, owner_id: UUID) -> list[AnyRow]:
    """The document's own shares, then those of the owner's categories it is filed under."""
    s_ = shares.c
    dc = document_categories.c
    filed = select(dc.category_id).where(dc.document_id == doc_id, dc.owner_id == owner_id)
    rows = (
        await s.execute(
            select(shares, categories.c.name.label("category_name"))
            .outerjoin(categories, categories.c.id == s_.category_id)
            .where((s_.document_id == doc_id) | s_.category_id.in_(filed))
            .order_by(s_.category_id.isnot(None), s_.created_at)
        )
    ).all()
    return list(rows)


async def _grantee(s: AsyncSession, ref: GranteeRef, caller: Caller, deps: DocsDeps) -> tuple[str, UUID]:
    """('user' | 'group', id) for whom a share names: an active account, or an existing group."""
    if ref.group_id is not None:
        if ref.group_id not in await deps.group_names(caller.actor):
            raise NotFound("There is no such group.", {"group_id": str(ref.group_id)})
        return "group", ref.group_id
    d = directory.c
    if ref.email is not None:
        await LOOKUPS.check(deps.db, "unknown_email", str(caller.user_id))
        found = (
            await s.execute(
                select(d.user_id).where(func.lower(d.email) == ref.email.strip().lower(), d.active)
            )
        ).scalar()
        if found is None:
            await LOOKUPS.hit(deps.db, "unknown_email", str(caller.user_id))
            raise NotFound(
                "No active Atrium account has this email address. Check the spelling, or share a link "
                "instead.",
                {"field": "email"},
            )
        return "user", found
    assert ref.user_id is not None
    if (await s.execute(select(d.user_id).where(d.user_id == ref.user_id, d.active))).scalar() is None:
        raise NotFound("There is no such active user.", {"user_id": str(ref.user_id)})
    return "user", ref.user_id


async def _managed_document(s: AsyncSession, doc_id: UUID, caller: Caller) -> UUID | None:
    """The owner of a document the caller owns; None when it is not theirs (an administrator may go on)."""
    row = await read_document_row(s, doc_id, caller)
    if row is not None and row.access_role == "owner":
        return caller.user_id
    if caller.is_admin:
        return None
    if row is None:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    raise Forbidden("Only the document's owner (or an administrator) can change who has access.")


async def grant_share(cmd: ShareGrant, ctx: Ctx, deps: DocsDeps) -> SharePublic:
    caller = await user(ctx, deps)
    by_admin = False
    if cmd.category_id is not None:
        async with acting(deps.db, caller) as s:
            await owned_category(s, cmd.category_id, caller.user_id)
        owner_id: UUID | None = caller.user_id
    else:
        assert cmd.document_id is not None
        async with acting(deps.db, caller) as s:
            owner_id = await _managed_document(s, cmd.document_id, caller)
    if owner_id is None:  # an administrator sharing someone else's document
        by_admin = True
        async with as_admin(deps.db, caller) as s:
            owner_id = (
                await s.execute(select(documents.c.owner_id).where(documents.c.id == cmd.document_id))
            ).scalar()
        if owner_id is None:
            raise NotFound("There is no such document.", {"id": str(cmd.document_id)})
    session = as_admin(deps.db, caller) if by_admin else acting(deps.db, caller, write=True)
    async with session as s:
        kind, grantee = await _grantee(s, cmd, caller, deps)
        if kind == "user" and grantee == owner_id:
            raise Invalid("The owner has every access already; share with someone else.", {"field": "email"})
        target = {"document_id": cmd.document_id} if cmd.document_id else {"category_id": cmd.category_id}
        column = "document_id" if cmd.document_id else "category_id"
        row = (
            await s.execute(
                pg_insert(shares)
                .values(
                    id=uuid.uuid4(),
                    owner_id=owner_id,
                    grantee_type=kind,
                    grantee_id=grantee,
                    role=cmd.role,
                    created_by=caller.user_id,
                    **target,
                )
                .on_conflict_do_update(
                    index_elements=[shares.c[column], shares.c.grantee_id],
                    index_where=shares.c[column].isnot(None),
                    set_={"role": cmd.role, "updated_at": func.now()},
                )
                .returning(shares)
            )
        ).one()
        await record_audit(
            s,
            audit_log,
            ctx,
            "share.granted",
            actor_id=caller.user_id,
            target_id=cmd.document_id or cmd.category_id,
            share_id=row.id,
            grantee_type=kind,
            grantee_id=grantee,
            role=cmd.role,
            by_admin=by_admin,
        )
        return (await _shares_public(s, [row], caller, deps))[0]


async def revoke_share(cmd: ShareRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    """Take a share back: effective on the grantee's next request (and next live event)."""
    caller = await user(ctx, deps)
    async with acting(deps.db, caller, write=True) as s:
        gone = (
            await s.execute(
                delete(shares)
                .where(shares.c.id == cmd.id, shares.c.owner_id == caller.user_id)
                .returning(shares)
            )
        ).first()
        if gone is not None:
            await _audit_revoked(s, ctx, caller, gone, by_admin=False)
            return Empty()
    if not caller.is_admin:
        raise NotFound("There is no such share (it may have been taken back already).", {"id": str(cmd.id)})
    async with as_admin(deps.db, caller) as s:
        gone = (await s.execute(delete(shares).where(shares.c.id == cmd.id).returning(shares))).first()
        if gone is None:
            raise NotFound(
                "There is no such share (it may have been taken back already).", {"id": str(cmd.id)}
            )
        await _audit_revoked(s, ctx, caller, gone, by_admin=True)
    return Empty()


async def _audit_revoked(s: AsyncSession, ctx: Ctx, caller: Caller, gone: AnyRow, *, by_admin: bool) -> None:
    await record_audit(
        s,
        audit_log,
        ctx,
        "share.revoked",
        actor_id=caller.user_id,
        target_id=gone.document_id or gone.category_id,
        share_id=gone.id,
        grantee_type=gone.grantee_type,
        grantee_id=gone.grantee_id,
        by_admin=by_admin,
    )
