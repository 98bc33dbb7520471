"""Share links for people without an account: created, listed (with every use) and revoked by the
document's owner (or an administrator, audited); opened by anyone holding the token.

A token is 32 random bytes (256 bits); only its SHA-256 is stored. A link gives the file (download mode) or
the page previews (preview mode), never both and nothing else, until it expires (7 days by default) or is
revoked, and only while its owner's account is active. With a password (argon2id), opening it with the
password gives a ticket (signed, 30 minutes) that each file or preview request carries. An unknown, expired
or revoked token, a wrong password, a wrong ticket and the wrong mode all get the same answer. Every use is
an audit entry the owner sees. Visitors are rate limited per IP address.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, Forbidden, NotFound
from contracts.docs_api import DocumentRef, DownloadTicket, PreviewTicket
from contracts.documents import PREVIEW_GRANT
from contracts.sharing import (
    LinkAccess,
    LinkCreated,
    LinkCreateFor,
    LinkDocument,
    LinkFile,
    LinkInfo,
    LinkList,
    LinkOpen,
    LinkPage,
    LinkPublic,
    LinkRef,
)
from services.kit.audit import client_ip, record_audit
from services.kit.bus import Ctx
from services.kit.grants import sign_grant, verify_grant
from services.kit.passwords import hash_password, verify_password
from services.kit.ratelimit import Rule, SharedRateLimiter

from ..access import Caller, acting, as_admin, as_system, read_document_row
from ..rows import AnyRow
from ..tables import audit_log, directory, documents, rate_limits, share_links
from .common import DocsDeps, now, user
from .files import stored_preview

TICKET_PURPOSE = "share-link"
TICKET_TTL_S = 30 * 60
PREVIEW_GRANT_TTL_S = 120
RECENT_USES = 20
USES = ("share_link.opened", "share_link.downloaded", "share_link.previewed")

# Per visitor IP: every request, and failures (a wrong password, an unknown token) much more tightly, across
# every documents process (a password guesser gets the limit, not the limit per process).
VISITORS = SharedRateLimiter(rate_limits, {"link_ip": Rule(120, 60), "link_fail_ip": Rule(10, 600)})


def _gone() -> NotFound:
    """The one answer to any link that does not work, whatever the reason."""
    return NotFound("This link does not work: it may have expired or been revoked, or the password is wrong.")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ---- the owner's side ------------------------------------------------------------------------------------


async def _manage(s: AsyncSession, doc_id: UUID, caller: Caller) -> bool:
    """Whether the caller manages the document's links as its owner (True) or as an administrator (False)."""
    row = await read_document_row(s, doc_id, caller)
    if row is not None and row.access_role == "owner":
        return True
    if caller.is_admin:
        return False
    if row is None:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    raise Forbidden("Only the document's owner (or an administrator) can manage its share links.")


async def _uses(s: AsyncSession, doc_id: UUID) -> dict[str, list[AnyRow]]:
    a = audit_log.c
    rows = (
        await s.execute(
            select(a.at, a.action, a.ip, a.details["link_id"].astext.label("link_id"))
            .where(a.target_id == doc_id, a.action.in_(USES))
            .order_by(a.at.desc())
        )
    ).all()
    by_link: dict[str, list[AnyRow]] = {}
    for r in rows:
        by_link.setdefault(r.link_id, []).append(r)
    return by_link


def _link_public(r: AnyRow, uses: list[AnyRow]) -> LinkPublic:
    return LinkPublic(
        id=r.id,
        document_id=r.document_id,
        mode=r.mode,
        has_password=r.password_hash is not None,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
        created_at=r.created_at,
        created_by=r.created_by,
        active=r.revoked_at is None and r.expires_at > now(),
        uses=len(uses),
        recent=[
            LinkAccess(at=u.at, action=u.action.removeprefix("share_link."), ip=str(u.ip) if u.ip else None)
            for u in uses[:RECENT_USES]
        ],
    )


async def create_link(cmd: LinkCreateFor, ctx: Ctx, deps: DocsDeps) -> LinkCreated:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        as_owner = await _manage(s, cmd.document_id, caller)
    token = secrets.token_urlsafe(32)
    password = await hash_password(cmd.password.get_secret_value()) if cmd.password else None
    session = acting(deps.db, caller, write=True) if as_owner else as_admin(deps.db, caller)
    async with session as s:
        owner = (
            await s.execute(select(documents.c.owner_id).where(documents.c.id == cmd.document_id))
        ).scalar()
        if owner is None:
            raise NotFound("There is no such document.", {"id": str(cmd.document_id)})
        row = (
            await s.execute(
                share_links.insert()
                .values(
                    id=uuid.uuid4(),
                    owner_id=owner,
                    document_id=cmd.document_id,
                    token_hash=token_hash(token),
                    mode=cmd.mode,
                    password_hash=password,
                    expires_at=now() + timedelta(days=cmd.expires_in_days),
                    created_by=caller.user_id,
                )
                .returning(share_links)
            )
        ).one()
        await record_audit(
            s,
            audit_log,
            ctx,
            "share_link.created",
            actor_id=caller.user_id,
            target_id=cmd.document_id,
            link_id=row.id,
            mode=cmd.mode,
            expires_at=row.expires_at,
            password=password is not None,
            by_admin=not as_owner,
        )
    return LinkCreated(link=_link_public(row, []), token=token)


async def list_links(cmd: DocumentRef, ctx: Ctx, deps: DocsDeps) -> LinkList:
    caller = await user(ctx, deps)
    async with acting(deps.db, caller) as s:
        as_owner = await _manage(s, cmd.id, caller)
    async with acting(deps.db, caller) if as_owner else as_admin(deps.db, caller) as s:
        rows = (
            await s.execute(
                select(share_links)
                .where(share_links.c.document_id == cmd.id)
                .order_by(share_links.c.created_at.desc())
            )
        ).all()
        uses = await _uses(s, cmd.id)
    return LinkList(items=[_link_public(r, uses.get(str(r.id), [])) for r in rows])


async def revoke_link(cmd: LinkRef, ctx: Ctx, deps: DocsDeps) -> Empty:
    caller = await user(ctx, deps)
    l_ = share_links.c
    for admin in (False, True):
        if admin and not caller.is_admin:
            break
        async with as_admin(deps.db, caller) if admin else acting(deps.db, caller, write=True) as s:
            mine = [] if admin else [l_.owner_id == caller.user_id]
            row = (
                await s.execute(
                    update(share_links)
                    .where(l_.id == cmd.id, *mine)
                    .values(revoked_at=func.coalesce(l_.revoked_at, func.now()))
                    .returning(share_links)
                )
            ).first()
            if row is not None:
                await record_audit(
                    s,
                    audit_log,
                    ctx,
                    "share_link.revoked",
                    actor_id=caller.user_id,
                    target_id=row.document_id,
                    link_id=row.id,
                    by_admin=admin,
                )
                return Empty()
    raise NotFound("There is no such share link.", {"id": str(cmd.id)})


# ---- the visitor's side (no account, no token) ---------------------------------------------------------


async def _admit(ctx: Ctx, deps: DocsDeps) -> str:
    """The visitor's IP, if it may try a link now (before a transaction: the limits have their own)."""
    ip = client_ip(ctx) or ""
    await VISITORS.check(deps.db, "link_fail_ip", ip)
    await VISITORS.take(deps.db, "link_ip", ip)
    return ip


async def _open(s: AsyncSession, token: str, ip: str, deps: DocsDeps) -> Any:
    """The link and its document, if the link works now; a failure is counted against the visitor's IP."""
    l_, d = share_links.c, documents.c
    owner = directory.alias("owner")
    row = (
        await s.execute(
            select(
                l_.id.label("link_id"),
                l_.mode,
                l_.password_hash,
                l_.expires_at,
                documents,
            )
            .join(documents, d.id == l_.document_id)
            .outerjoin(owner, owner.c.user_id == l_.owner_id)
            .where(
                l_.token_hash == token_hash(token),
                l_.revoked_at.is_(None),
                l_.expires_at > func.now(),
                d.owner_id == l_.owner_id,  # ownership never moves, but a link is only ever its owner's
                func.coalesce(owner.c.active, True),  # a deactivated owner's links stop working
            )
        )
    ).first()
    if row is None:
        await VISITORS.hit(deps.db, "link_fail_ip", ip)
        raise _gone()
    return row


def _ticket_ok(row: Any, ticket: str | None, deps: DocsDeps) -> bool:
    if row.password_hash is None:
        return True
    return verify_grant(deps.platform_secret, TICKET_PURPOSE, str(row.link_id), ticket or "")


async def _audit_use(s: AsyncSession, ctx: Ctx, row: Any, action: str, **details: Any) -> None:
    await record_audit(s, audit_log, ctx, action, target_id=row.id, link_id=row.link_id, **details)


async def open_link(cmd: LinkOpen, ctx: Ctx, deps: DocsDeps) -> LinkInfo:
    ip = await _admit(ctx, deps)
    async with as_system(deps.db, "share_link") as s:
        row = await _open(s, cmd.token, ip, deps)
        if row.password_hash is not None:
            if cmd.password is None:
                return LinkInfo(mode=row.mode, expires_at=row.expires_at, password_required=True)
            if not await verify_password(row.password_hash, cmd.password.get_secret_value()):
                await VISITORS.hit(deps.db, "link_fail_ip", ip)
                raise _gone()
        await _audit_use(s, ctx, row, "share_link.opened")
    ticket = (
        sign_grant(deps.platform_secret, TICKET_PURPOSE, str(row.link_id), ttl_s=TICKET_TTL_S)
        if row.password_hash is not None
        else None
    )
    return LinkInfo(
        mode=row.mode,
        expires_at=row.expires_at,
        password_required=row.password_hash is not None,
        document=LinkDocument(
            filename=row.filename,
            size=row.size,
            page_count=row.page_count,
            preview_pages=row.preview_pages if row.mode == "preview" else 0,
        ),
        ticket=ticket,
    )


async def _use_link(
    token: str, ticket: str | None, mode: str, action: str, ctx: Ctx, deps: DocsDeps, **details: Any
) -> Any:
    """The link's row for one use in `mode` (its file, its previews), audited as `action`; the wrong mode or
    ticket gets the same answer as a link that does not work, and counts as the visitor's failure."""
    ip = await _admit(ctx, deps)
    async with as_system(deps.db, "share_link") as s:
        row = await _open(s, token, ip, deps)
        if row.mode != mode or not _ticket_ok(row, ticket, deps):
            await VISITORS.hit(deps.db, "link_fail_ip", ip)
            raise _gone()
        await _audit_use(s, ctx, row, action, **details)
    return row


async def link_file(cmd: LinkFile, ctx: Ctx, deps: DocsDeps) -> DownloadTicket:
    row = await _use_link(cmd.token, cmd.ticket, "download", "share_link.downloaded", ctx, deps)
    return DownloadTicket(object_name=row.object_name, filename=row.filename, size=row.size)


async def link_preview(cmd: LinkPage, ctx: Ctx, deps: DocsDeps) -> PreviewTicket:
    row = await _use_link(cmd.token, cmd.ticket, "preview", "share_link.previewed", ctx, deps, page=cmd.page)
    grant = sign_grant(
        deps.platform_secret, PREVIEW_GRANT, f"{row.id}:{row.run_id}", ttl_s=PREVIEW_GRANT_TTL_S
    )
    return await stored_preview(row, cmd.page, deps, reader=None, grant=grant)
