"""Administration: every account, its role and state, its sessions, a reset link, deletion, the audit log."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, NotFound
from contracts.auth import (
    USER_DELETED,
    Ack,
    AdminUpdateUser,
    AdminUserRef,
    AuditEntry,
    AuditPage,
    ListAudit,
    ListUsers,
    UserDeleted,
    UserPage,
    UserPublic,
)
from services.kit.context import Ctx

from ..rows import UserRow
from ..tables import audit_log, users
from .common import (
    AuthDeps,
    announce_user_changed,
    audit,
    end_all_sessions,
    end_sessions,
    live_session_ids,
    now,
    user_by_id,
    user_public,
)
from .factors import account_views
from .links import mail_reset, new_link_token


async def admin_list_users(cmd: ListUsers, ctx: Ctx, deps: AuthDeps) -> UserPage:
    conds = []
    if cmd.search:
        pattern = "%" + cmd.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(
            or_(
                users.c.email.ilike(pattern),
                users.c.username.ilike(pattern),
                users.c.full_name.ilike(pattern),
            )
        )
    if cmd.role:
        conds.append(users.c.role == cmd.role)
    if cmd.state:
        conds.append(users.c.is_active.is_(cmd.state == "active"))
    where = and_(*conds) if conds else None
    async with deps.db.session() as s:
        q = select(users)
        cq = select(func.count()).select_from(users)
        if where is not None:
            q, cq = q.where(where), cq.where(where)
        total = (await s.execute(cq)).scalar_one()
        rows = (
            await s.execute(
                q.order_by(users.c.created_at.desc(), users.c.id).limit(cmd.limit).offset(cmd.offset)
            )
        ).all()
        items = await account_views(s, rows)
    return UserPage(items=items, total=total, limit=cmd.limit, offset=cmd.offset)


async def admin_update_user(cmd: AdminUpdateUser, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _lock_target_and_admins(s, cmd.user_id)
        role = cmd.role or user.role
        active = user.is_active if cmd.is_active is None else cmd.is_active
        if (role, active) == (user.role, user.is_active):
            return user_public(user)
        if role != "admin" or not active:
            await _refuse_last_admin(s, user)
        row = (
            await s.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(role=role, is_active=active, updated_at=func.now())
                .returning(users)
            )
        ).one()
        if role != user.role:
            await audit(
                s,
                ctx,
                "user.role_changed",
                actor_id=actor.user_id,
                target_id=user.id,
                old=user.role,
                new=role,
            )
        if active != user.is_active:
            await audit(
                s,
                ctx,
                "user.activated" if active else "user.deactivated",
                actor_id=actor.user_id,
                target_id=user.id,
            )
        await deps.state.put_user(user.id, role=role, active=active)
        if not active:
            await end_sessions(
                s,
                deps,
                ctx,
                await live_session_ids(s, user.id),
                "deactivated",
                actor_id=actor.user_id,
                target_id=user.id,
            )
        await announce_user_changed(s, deps, row)
    await deps.outbox.flush()
    return user_public(row)


async def _lock_target_and_admins(s: AsyncSession, user_id: UUID) -> UserRow:
    # Lock every active admin in one order first, so two admins demoting each other cannot both win.
    await s.execute(
        select(users.c.id)
        .where(users.c.role == "admin", users.c.is_active)
        .order_by(users.c.id)
        .with_for_update()
    )
    user = await user_by_id(s, user_id, lock=True)
    if user is None:
        raise NotFound("There is no account with this id.")
    return user


async def _refuse_last_admin(s: AsyncSession, user: UserRow) -> None:
    """Call with the admins locked: refuse when `user` is the only active administrator."""
    if user.role != "admin" or not user.is_active:
        return
    others = (
        await s.execute(
            select(func.count())
            .select_from(users)
            .where(users.c.role == "admin", users.c.is_active, users.c.id != user.id)
        )
    ).scalar_one()
    if others == 0:
        raise Conflict("This is the last active administrator; make another account admin first.")


async def admin_delete_user(cmd: AdminUserRef, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _lock_target_and_admins(s, cmd.user_id)
        await _refuse_last_admin(s, user)
        live = await live_session_ids(s, user.id)
        await deps.state.revoke_sessions(live)
        await deps.state.put_user(user.id, role=user.role, active=False, cut_off_tokens=True)
        await s.execute(delete(users).where(users.c.id == user.id))  # sessions and tokens cascade
        await audit(
            s, ctx, "user.deleted", actor_id=actor.user_id, target_id=user.id, sessions_ended=len(live)
        )
        await deps.outbox.enqueue(
            s, USER_DELETED, UserDeleted(user_id=user.id, deleted_at=now()), msg_id=f"user_deleted:{user.id}"
        )
    await deps.outbox.flush()
    return Ack(message="The account is deleted; every service forgets it.")


async def admin_end_sessions(cmd: AdminUserRef, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, cmd.user_id)
        if user is None:
            raise NotFound("There is no account with this id.")
        ended = await end_all_sessions(s, deps, ctx, user, "ended_by_admin", actor_id=actor.user_id)
    return Ack(message=f"{len(ended)} session(s) ended.")


async def admin_start_reset(cmd: AdminUserRef, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, cmd.user_id)
        if user is None:
            raise NotFound("There is no account with this id.")
        token = await new_link_token(s, deps, user.id, "reset")
        await audit(s, ctx, "password.reset_started", actor_id=actor.user_id, target_id=user.id)
    await mail_reset(deps, user.email, token)
    return Ack(message=f"A password-reset link was sent to {user.email}.")


async def admin_audit(cmd: ListAudit, ctx: Ctx, deps: AuthDeps) -> AuditPage:
    conds = []
    if cmd.action:
        conds.append(
            audit_log.c.action.startswith(cmd.action, autoescape=True)
            if cmd.action.endswith(".")
            else audit_log.c.action == cmd.action
        )
    if cmd.actor_id:
        conds.append(audit_log.c.actor_id == cmd.actor_id)
    if cmd.target_id:
        conds.append(audit_log.c.target_id == cmd.target_id)
    if cmd.since:
        conds.append(audit_log.c.at >= cmd.since)
    if cmd.until:
        conds.append(audit_log.c.at < cmd.until)
    async with deps.db.session() as s:
        total = (await s.execute(select(func.count()).select_from(audit_log).where(*conds))).scalar_one()
        rows = (
            await s.execute(
                select(audit_log)
                .where(*conds)
                .order_by(audit_log.c.at.desc(), audit_log.c.id)
                .limit(cmd.limit)
                .offset(cmd.offset)
            )
        ).all()
    items = [
        AuditEntry(
            id=r.id,
            at=r.at,
            action=r.action,
            actor_id=r.actor_id,
            target_id=r.target_id,
            ip=str(r.ip) if r.ip else None,
            request_id=r.request_id,
            details=r.details or {},
        )
        for r in rows
    ]
    return AuditPage(items=items, total=total, limit=cmd.limit, offset=cmd.offset)
