"""Auth use cases as plain functions of a command and their dependencies (no transport here)."""

from __future__ import annotations

import ipaddress
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Invalid, NotFound, Unauthenticated
from contracts.auth import (
    Ack,
    AdminUpdateUser,
    AdminUserRef,
    AuditEntry,
    AuditPage,
    ChangeEmail,
    ChangePassword,
    EndSession,
    ForgotPassword,
    ListAudit,
    ListUsers,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterUser,
    ResetPassword,
    SessionInfo,
    SessionList,
    TokenPair,
    UserChanged,
    UserDeleted,
    UserPage,
    UserPublic,
    UserRegistered,
    VerifyEmail,
)
from services.kit import passwords
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.ratelimit import RateLimiter

from . import tokens
from .config import AuthConfig
from .keys import KeyRing
from .mailer import Mailer
from .state import AuthState
from .tables import action_tokens, audit_log, refresh_history, sessions, users

log = logging.getLogger("atrium.auth")

BAD_LOGIN = "Wrong email or password, or the account is not active."
BAD_REFRESH = "This refresh token is not valid (expired, ended or unknown); sign in again."
BUS_CLIENT = "bus"
FORGOT_ANSWER = (
    "If an account exists for this address, a link to reset its password is on its way. "
    "It is valid for 30 minutes."
)

PublishRegistered = Callable[[UserRegistered], Awaitable[None]]
PublishChanged = Callable[[UserChanged], Awaitable[None]]
PublishDeleted = Callable[[UserDeleted], Awaitable[None]]


@dataclass
class AuthDeps:
    db: Database
    keys: KeyRing
    publish_registered: PublishRegistered
    publish_changed: PublishChanged
    publish_deleted: PublishDeleted
    config: AuthConfig
    limiter: RateLimiter
    mailer: Mailer
    state: AuthState


def _now() -> datetime:
    return datetime.now(UTC)


def _public(row: Any) -> UserPublic:
    return UserPublic(
        id=row.id,
        email=row.email,
        full_name=row.full_name,
        role=row.role,
        is_active=row.is_active,
        email_verified=row.email_verified,
        created_at=row.created_at,
    )


def _ip(ctx: Ctx) -> str | None:
    try:
        return str(ipaddress.ip_address(ctx.client_ip)) if ctx.client_ip else None
    except ValueError:
        return None


def _client(ctx: Ctx) -> str:
    """The per-IP rate-limit key. Direct bus callers (no `x-client-ip`, i.e. not via the gateway)
    share one bucket, so skipping the gateway never means skipping the limit."""
    return ctx.client_ip or BUS_CLIENT


def _email_key(email: str) -> str:
    return email.strip().lower()


async def audit(
    s: AsyncSession, action: str, ctx: Ctx, *, actor_id: Any = None, target_id: Any = None, **details: Any
) -> None:
    """One audit row in the caller's transaction. Callers pass facts only — never a password or token."""
    await s.execute(
        insert(audit_log).values(
            id=uuid.uuid4(),
            action=action,
            actor_id=actor_id,
            target_id=target_id,
            ip=_ip(ctx),
            request_id=ctx.request_id[:64],
            details=details,
        )
    )


async def _user_by_email(s: AsyncSession, email: str) -> Any:
    return (
        await s.execute(select(users).where(func.lower(users.c.email) == _email_key(email)))
    ).one_or_none()


async def _user_by_id(s: AsyncSession, user_id: Any, *, lock: bool = False) -> Any:
    q = select(users).where(users.c.id == user_id)
    return (await s.execute(q.with_for_update() if lock else q)).one_or_none()


# ---- mail -------------------------------------------------------------------------------------------


async def _new_action_token(
    s: AsyncSession, deps: AuthDeps, user_id: Any, kind: str, new_email: str | None = None
) -> str:
    ttl = deps.config.reset_ttl_s if kind == "reset" else deps.config.verify_ttl_s
    token = tokens.new_action_token()
    await s.execute(
        insert(action_tokens).values(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind,
            token_hash=tokens.hash_token(token),
            new_email=new_email,
            expires_at=_now() + timedelta(seconds=ttl),
        )
    )
    return token


async def _mail_verification(deps: AuthDeps, to: str, token: str) -> None:
    link = f"{deps.config.public_url}/verify-email?token={token}"
    await deps.mailer.send(
        to,
        "Confirm your email address for Atrium",
        f"Open this link within 24 hours to confirm {to}:\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail.\n",
    )


async def _mail_reset(deps: AuthDeps, to: str, token: str) -> None:
    link = f"{deps.config.public_url}/reset-password?token={token}"
    await deps.mailer.send(
        to,
        "Reset your Atrium password",
        f"Open this link within 30 minutes to choose a new password:\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail; your password stays as it is.\n",
    )


# ---- accounts ---------------------------------------------------------------------------------------


async def register_user(cmd: RegisterUser, deps: AuthDeps, ctx: Ctx) -> UserPublic:
    email = str(cmd.email).strip()
    deps.limiter.take("register_ip", _client(ctx))
    deps.limiter.take("register_account", _email_key(email))
    password = cmd.password.get_secret_value()
    deps.config.policy.enforce(password, email)
    pw_hash = await passwords.hash_password(password)
    user_id = uuid.uuid4()
    async with deps.db.transaction() as s:
        # No account is special: admins come from `atrium admin create`.
        try:
            row = (
                await s.execute(
                    insert(users)
                    .values(
                        id=user_id, email=email, password_hash=pw_hash, full_name=cmd.full_name, role="user"
                    )
                    .returning(users)
                )
            ).one()
        except IntegrityError:
            raise Conflict(
                "An account with this email may already exist; sign in or reset the password."
            ) from None
        await audit(s, "user.registered", ctx, actor_id=user_id, target_id=user_id)
        token = await _new_action_token(s, deps, user_id, "verify")
    user = _public(row)
    await _mail_verification(deps, email, token)
    await deps.publish_registered(
        UserRegistered(
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            registered_at=user.created_at,
        )
    )
    return user


async def me(deps: AuthDeps, ctx: Ctx) -> UserPublic:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        row = await _user_by_id(s, actor.user_id)
    if row is None:
        raise NotFound("This account no longer exists.")
    return _public(row)


# ---- sessions ---------------------------------------------------------------------------------------


def _pair(deps: AuthDeps, row: Any, session_id: Any, refresh: str, expires_at: datetime) -> TokenPair:
    access = tokens.issue_access_token(
        deps.keys, user_id=row.id, role=row.role, session_id=session_id, ttl_s=deps.config.access_ttl_s
    )
    left = max(0, math.floor((expires_at - _now()).total_seconds()))
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=deps.config.access_ttl_s,
        refresh_expires_in=left,
        user=_public(row),
    )


async def login(cmd: LoginRequest, deps: AuthDeps, ctx: Ctx) -> TokenPair:
    email = str(cmd.email).strip()
    account = _email_key(email)
    deps.limiter.take("login_ip", _client(ctx))
    deps.limiter.check("login_account", account)
    async with deps.db.session() as s:
        row = await _user_by_email(s, email)
    # Always verify (against a dummy hash for an unknown email) so every failure takes as long.
    ok = await passwords.verify_password(row.password_hash if row else None, cmd.password.get_secret_value())
    if not ok or row is None or not row.is_active:
        deps.limiter.hit("login_account", account)
        reason = "unknown_email" if row is None else ("wrong_password" if not ok else "inactive")
        async with deps.db.transaction() as s:
            await audit(
                s, "login.failed", ctx, target_id=row.id if row else None, email=account, reason=reason
            )
        raise Unauthenticated(BAD_LOGIN)
    refresh = tokens.new_refresh_token()
    session_id = uuid.uuid4()
    now = _now()
    expires_at = now + timedelta(seconds=deps.config.refresh_ttl(cmd.remember_me))
    async with deps.db.transaction() as s:
        if passwords.needs_rehash(row.password_hash):
            new_hash = await passwords.hash_password(cmd.password.get_secret_value())
            await s.execute(update(users).where(users.c.id == row.id).values(password_hash=new_hash))
        await s.execute(
            insert(sessions).values(
                id=session_id,
                user_id=row.id,
                refresh_hash=tokens.hash_token(refresh),
                remember_me=cmd.remember_me,
                created_at=now,
                last_used_at=now,
                expires_at=expires_at,
                ip=_ip(ctx),
                user_agent=(ctx.user_agent or None) and ctx.user_agent[:400],
            )
        )
        await audit(
            s,
            "login.succeeded",
            ctx,
            actor_id=row.id,
            target_id=row.id,
            session_id=str(session_id),
            remember_me=cmd.remember_me,
        )
    await deps.state.sync_user(row.id, role=row.role, active=row.is_active)
    return _pair(deps, row, session_id, refresh, expires_at)


async def refresh(cmd: RefreshRequest, deps: AuthDeps, ctx: Ctx) -> TokenPair:
    """Rotate: the presented token is replaced by a new one, once.

    Racing refreshes with the same token serialise on the session row (`FOR UPDATE`). The winner
    rotates and stores the successor encrypted under a key derived from the presented token; a loser
    that presents that token within `refresh_grace_s` decrypts and receives the same successor.
    Any other use of a rotated token is reuse: the whole session is revoked.
    """
    deps.limiter.take("refresh_ip", _client(ctx))
    presented = cmd.refresh_token.get_secret_value()
    async with deps.db.transaction() as s:
        # Failures that change state (reuse, expiry) return their error so the transaction commits.
        outcome = await _rotate(s, deps, ctx, presented)
    if isinstance(outcome, Unauthenticated):
        raise outcome
    user, session, successor = outcome
    await deps.state.sync_user(user.id, role=user.role, active=user.is_active)
    return _pair(deps, user, session.id, successor, session.expires_at)


async def _rotate(s: AsyncSession, deps: AuthDeps, ctx: Ctx, presented: str) -> Any:
    h = tokens.hash_token(presented)
    now = _now()
    row = (
        await s.execute(
            select(sessions)
            .where(or_(sessions.c.refresh_hash == h, sessions.c.previous_hash == h))
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        used = (
            await s.execute(select(refresh_history.c.session_id).where(refresh_history.c.token_hash == h))
        ).scalar_one_or_none()
        if used is not None:
            await _revoke_reused(s, deps, ctx, used)
            return Unauthenticated(BAD_REFRESH, {"reason": "reused"})
        return Unauthenticated(BAD_REFRESH)
    if row.revoked_at is not None:
        return Unauthenticated(BAD_REFRESH, {"reason": "revoked"})
    idle_deadline = row.last_used_at + timedelta(seconds=deps.config.idle_timeout(row.remember_me))
    if row.expires_at <= now or idle_deadline <= now:
        await _end_sessions(s, deps, ctx, [row.id], "expired", target_id=row.user_id)
        return Unauthenticated(BAD_REFRESH, {"reason": "expired"})
    user = await _user_by_id(s, row.user_id)
    if user is None or not user.is_active:
        return Unauthenticated(BAD_REFRESH, {"reason": "inactive"})
    deps.limiter.take("refresh_account", str(row.user_id))  # raises before anything changed
    if row.refresh_hash == h:
        successor = tokens.new_refresh_token()
        await s.execute(
            update(sessions)
            .where(sessions.c.id == row.id)
            .values(
                refresh_hash=tokens.hash_token(successor),
                previous_hash=h,
                rotated_at=now,
                last_used_at=now,
                successor_enc=tokens.seal_successor(presented, successor),
            )
        )
        await s.execute(insert(refresh_history).values(token_hash=h, session_id=row.id, rotated_at=now))
        return user, row, successor
    # The previous token again: a racing tab within the grace window gets the same successor; else reuse.
    in_grace = row.rotated_at is not None and now - row.rotated_at <= timedelta(
        seconds=deps.config.refresh_grace_s
    )
    successor = ""
    if in_grace and row.successor_enc:
        try:
            successor = tokens.open_successor(presented, row.successor_enc)
        except (InvalidTag, ValueError):
            successor = ""
    if not successor:
        await _revoke_reused(s, deps, ctx, row.id)
        return Unauthenticated(BAD_REFRESH, {"reason": "reused"})
    await s.execute(update(sessions).where(sessions.c.id == row.id).values(last_used_at=now))
    return user, row, successor


async def _revoke_reused(s: AsyncSession, deps: AuthDeps, ctx: Ctx, session_id: Any) -> None:
    row = (await s.execute(select(sessions.c.user_id).where(sessions.c.id == session_id))).one_or_none()
    if row is None:
        return
    await audit(s, "refresh.reuse_detected", ctx, target_id=row.user_id, session_id=str(session_id))
    await _end_sessions(s, deps, ctx, [session_id], "refresh_reuse", target_id=row.user_id)


async def _end_sessions(
    s: AsyncSession,
    deps: AuthDeps,
    ctx: Ctx,
    session_ids: Iterable[Any],
    reason: str,
    *,
    actor_id: Any = None,
    target_id: Any = None,
) -> list[Any]:
    """Revoke live sessions in the database and in `auth_state`; returns the ids that were live."""
    ids = list(session_ids)
    if not ids:
        return []
    ended = list(
        (
            await s.execute(
                update(sessions)
                .where(sessions.c.id.in_(ids), sessions.c.revoked_at.is_(None))
                .values(revoked_at=_now(), revoked_reason=reason, successor_enc=None)
                .returning(sessions.c.id)
            )
        ).scalars()
    )
    if ended:
        await audit(
            s,
            "session.ended",
            ctx,
            actor_id=actor_id,
            target_id=target_id,
            reason=reason,
            sessions=[str(i) for i in ended],
        )
        await deps.state.revoke_sessions(ended)
    return ended


async def _live_session_ids(s: AsyncSession, user_id: Any, *, except_id: Any = None) -> list[Any]:
    q = select(sessions.c.id).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if except_id is not None:
        q = q.where(sessions.c.id != except_id)
    return list((await s.execute(q)).scalars())


async def _end_all_sessions(
    s: AsyncSession, deps: AuthDeps, ctx: Ctx, user: Any, reason: str, *, actor_id: Any
) -> list[Any]:
    ended = await _end_sessions(
        s, deps, ctx, await _live_session_ids(s, user.id), reason, actor_id=actor_id, target_id=user.id
    )
    await deps.state.put_user(user.id, role=user.role, active=user.is_active, cut_off_tokens=True)
    return ended


async def logout(cmd: LogoutRequest, deps: AuthDeps, ctx: Ctx) -> Ack:
    async with deps.db.transaction() as s:
        if ctx.actor is not None:
            sid, uid = ctx.actor.session_id, ctx.actor.user_id
        elif cmd.refresh_token is not None:
            h = tokens.hash_token(cmd.refresh_token.get_secret_value())
            row = (
                await s.execute(
                    select(sessions.c.id, sessions.c.user_id).where(
                        or_(sessions.c.refresh_hash == h, sessions.c.previous_hash == h)
                    )
                )
            ).one_or_none()
            if row is None:
                return Ack(message="Signed out.")
            sid, uid = row.id, row.user_id
        else:
            raise Unauthenticated("Send the access token or the refresh token of the session to end.")
        await _end_sessions(s, deps, ctx, [sid], "logout", actor_id=uid, target_id=uid)
        await audit(s, "logout", ctx, actor_id=uid, target_id=uid, session_id=str(sid))
    return Ack(message="Signed out.")


async def logout_all(deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _user_by_id(s, actor.user_id)
        if user is None:
            raise NotFound("This account no longer exists.")
        ended = await _end_all_sessions(s, deps, ctx, user, "logout_all", actor_id=actor.user_id)
        await audit(s, "logout.all", ctx, actor_id=actor.user_id, target_id=actor.user_id, count=len(ended))
    return Ack(message=f"Signed out of {len(ended)} session(s).")


def describe_device(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    ua = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("opr/", "Opera"),
                ("firefox/", "Firefox"),
                ("chrome/", "Chrome"),
                ("safari/", "Safari"),
                ("curl/", "curl"),
                ("python-httpx", "httpx"),
                ("python", "Python"),
            )
            if key in ua
        ),
        None,
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in ua
        ),
        None,
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent[:60]


async def list_sessions(deps: AuthDeps, ctx: Ctx) -> SessionList:
    actor = ctx.require_actor()
    now = _now()
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(sessions)
                .where(
                    sessions.c.user_id == actor.user_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now,
                )
                .order_by(sessions.c.last_used_at.desc())
            )
        ).all()
    items = [
        SessionInfo(
            id=r.id,
            device=describe_device(r.user_agent),
            ip=str(r.ip) if r.ip else None,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            expires_at=r.expires_at,
            remember_me=r.remember_me,
            current=str(r.id) == actor.session_id,
        )
        for r in rows
        if r.last_used_at + timedelta(seconds=deps.config.idle_timeout(r.remember_me)) > now
    ]
    return SessionList(items=items)


async def end_session(cmd: EndSession, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        owner = (
            await s.execute(
                select(sessions.c.user_id).where(
                    sessions.c.id == cmd.session_id, sessions.c.revoked_at.is_(None)
                )
            )
        ).scalar_one_or_none()
        if owner != actor.user_id:  # another user's session looks exactly like a missing one
            raise NotFound("There is no live session with this id among yours.")
        await _end_sessions(
            s, deps, ctx, [cmd.session_id], "ended_by_user", actor_id=actor.user_id, target_id=actor.user_id
        )
    return Ack(message="The session has ended.")


# ---- passwords and email ------------------------------------------------------------------------------


async def _check_password_of(deps: AuthDeps, row: Any, password: str) -> None:
    account = _email_key(row.email)
    deps.limiter.check("login_account", account)
    if not await passwords.verify_password(row.password_hash, password):
        deps.limiter.hit("login_account", account)
        raise Unauthenticated("The password is wrong.", {"field": "password"})


async def change_password(cmd: ChangePassword, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        row = await _user_by_id(s, actor.user_id)
    if row is None:
        raise NotFound("This account no longer exists.")
    await _check_password_of(deps, row, cmd.current_password.get_secret_value())
    new = cmd.new_password.get_secret_value()
    deps.config.policy.enforce(new, row.email, "new_password")
    new_hash = await passwords.hash_password(new)
    async with deps.db.transaction() as s:
        await s.execute(
            update(users).where(users.c.id == row.id).values(password_hash=new_hash, updated_at=func.now())
        )
        await _invalidate_action_tokens(s, row.id, "reset")
        others = await _live_session_ids(s, row.id, except_id=uuid.UUID(actor.session_id))
        ended = await _end_sessions(
            s, deps, ctx, others, "password_changed", actor_id=row.id, target_id=row.id
        )
        await audit(s, "password.changed", ctx, actor_id=row.id, target_id=row.id, sessions_ended=len(ended))
    return Ack(message=f"Password changed; {len(ended)} other session(s) ended.")


async def _invalidate_action_tokens(s: AsyncSession, user_id: Any, kind: str) -> None:
    await s.execute(
        update(action_tokens)
        .where(
            action_tokens.c.user_id == user_id,
            action_tokens.c.kind == kind,
            action_tokens.c.used_at.is_(None),
        )
        .values(used_at=_now())
    )


async def forgot_password(cmd: ForgotPassword, deps: AuthDeps, ctx: Ctx) -> Ack:
    account = _email_key(str(cmd.email))
    deps.limiter.take("forgot_ip", _client(ctx))
    deps.limiter.take("forgot_account", account)  # keyed by the address, existing or not
    async with deps.db.transaction() as s:
        row = await _user_by_email(s, account)
        token = None
        if row is not None and row.is_active:
            token = await _new_action_token(s, deps, row.id, "reset")
        await audit(
            s,
            "password.reset_requested",
            ctx,
            target_id=row.id if row else None,
            email=account,
            matched=token is not None,
        )
    if token is not None:
        await _mail_reset(deps, row.email, token)
    return Ack(message=FORGOT_ANSWER)


async def _take_action_token(s: AsyncSession, token: str, kind: str) -> Any:
    row = (
        await s.execute(
            select(action_tokens)
            .where(action_tokens.c.token_hash == tokens.hash_token(token), action_tokens.c.kind == kind)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= _now():
        what = "reset" if kind == "reset" else "verification"
        raise Invalid(
            f"This {what} link is invalid, used or expired; ask for a new one.", [{"field": "token"}]
        )
    await s.execute(update(action_tokens).where(action_tokens.c.id == row.id).values(used_at=_now()))
    return row


async def reset_password(cmd: ResetPassword, deps: AuthDeps, ctx: Ctx) -> Ack:
    deps.limiter.take("verify_ip", _client(ctx))
    new = cmd.new_password.get_secret_value()
    async with deps.db.session() as s:
        pending = (
            await s.execute(
                select(users.c.email)
                .select_from(action_tokens.join(users))
                .where(action_tokens.c.token_hash == tokens.hash_token(cmd.token.get_secret_value()))
            )
        ).scalar_one_or_none()
    if pending is not None:  # check the policy before spending the token
        deps.config.policy.enforce(new, pending, "new_password")
    new_hash = await passwords.hash_password(new)
    async with deps.db.transaction() as s:
        tok = await _take_action_token(s, cmd.token.get_secret_value(), "reset")
        user = await _user_by_id(s, tok.user_id, lock=True)
        await s.execute(
            update(users).where(users.c.id == user.id).values(password_hash=new_hash, updated_at=func.now())
        )
        await _invalidate_action_tokens(s, user.id, "reset")
        ended = await _end_all_sessions(s, deps, ctx, user, "password_reset", actor_id=user.id)
        await audit(s, "password.reset", ctx, actor_id=user.id, target_id=user.id, sessions_ended=len(ended))
    return Ack(message="Password changed; sign in with the new password. Every session has ended.")


async def verify_email(cmd: VerifyEmail, deps: AuthDeps, ctx: Ctx) -> UserPublic:
    deps.limiter.take("verify_ip", _client(ctx))
    async with deps.db.transaction() as s:
        tok = await _take_action_token(s, cmd.token.get_secret_value(), "verify")
        user = await _user_by_id(s, tok.user_id, lock=True)
        values: dict[str, Any] = {"email_verified": True, "updated_at": func.now()}
        if tok.new_email:
            values["email"] = tok.new_email
        try:
            row = (
                await s.execute(update(users).where(users.c.id == user.id).values(**values).returning(users))
            ).one()
        except IntegrityError:
            raise Conflict("Another account uses this address now; the change cannot be applied.") from None
        if tok.new_email:
            await _invalidate_action_tokens(s, user.id, "verify")
            await audit(
                s,
                "email.changed",
                ctx,
                actor_id=user.id,
                target_id=user.id,
                old=user.email,
                new=tok.new_email,
            )
        else:
            await audit(s, "email.verified", ctx, actor_id=user.id, target_id=user.id)
    if tok.new_email:
        await deps.publish_changed(
            UserChanged(
                user_id=row.id, role=row.role, is_active=row.is_active, email=row.email, changed_at=_now()
            )
        )
    return _public(row)


async def resend_verification(deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    deps.limiter.take("verify_account", str(actor.user_id))
    async with deps.db.transaction() as s:
        row = await _user_by_id(s, actor.user_id)
        if row is None:
            raise NotFound("This account no longer exists.")
        if row.email_verified:
            return Ack(message="This address is already confirmed.")
        # Older links for the current address stop working; a pending email change keeps its link.
        await s.execute(
            update(action_tokens)
            .where(
                action_tokens.c.user_id == row.id,
                action_tokens.c.kind == "verify",
                action_tokens.c.new_email.is_(None),
                action_tokens.c.used_at.is_(None),
            )
            .values(used_at=_now())
        )
        token = await _new_action_token(s, deps, row.id, "verify")
    await _mail_verification(deps, row.email, token)
    return Ack(message=f"A new confirmation link is on its way to {row.email}.")


async def change_email(cmd: ChangeEmail, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    new_email = str(cmd.new_email).strip()
    async with deps.db.session() as s:
        row = await _user_by_id(s, actor.user_id)
        if row is None:
            raise NotFound("This account no longer exists.")
        await _check_password_of(deps, row, cmd.password.get_secret_value())
        if _email_key(new_email) == _email_key(row.email):
            raise Invalid("This is already your email address.", [{"field": "new_email"}])
        if await _user_by_email(s, new_email) is not None:
            raise Conflict("Another account uses this address.")
    async with deps.db.transaction() as s:
        await _invalidate_action_tokens(s, row.id, "verify")
        token = await _new_action_token(s, deps, row.id, "verify", new_email=new_email)
        await audit(s, "email.change_requested", ctx, actor_id=row.id, target_id=row.id, new=new_email)
    await _mail_verification(deps, new_email, token)
    await deps.mailer.send(
        row.email,
        "Your Atrium email address is being changed",
        f"Someone signed in to your account asked to change its address to {new_email}.\n"
        "If this was not you, change your password now.\n",
    )
    return Ack(message=f"Open the link we sent to {new_email} to confirm the change.")


# ---- administration ----------------------------------------------------------------------------------


async def admin_list_users(cmd: ListUsers, deps: AuthDeps, ctx: Ctx) -> UserPage:
    conds = []
    if cmd.search:
        pattern = "%" + cmd.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(or_(users.c.email.ilike(pattern), users.c.full_name.ilike(pattern)))
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
    return UserPage(items=[_public(r) for r in rows], total=total, limit=cmd.limit, offset=cmd.offset)


async def admin_update_user(cmd: AdminUpdateUser, deps: AuthDeps, ctx: Ctx) -> UserPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _lock_target_and_admins(s, cmd.user_id)
        role = cmd.role or user.role
        active = user.is_active if cmd.is_active is None else cmd.is_active
        if (role, active) == (user.role, user.is_active):
            return _public(user)
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
                "user.role_changed",
                ctx,
                actor_id=actor.user_id,
                target_id=user.id,
                old=user.role,
                new=role,
            )
        if active != user.is_active:
            await audit(
                s,
                "user.activated" if active else "user.deactivated",
                ctx,
                actor_id=actor.user_id,
                target_id=user.id,
            )
        await deps.state.put_user(user.id, role=role, active=active)
        if not active:
            await _end_sessions(
                s,
                deps,
                ctx,
                await _live_session_ids(s, user.id),
                "deactivated",
                actor_id=actor.user_id,
                target_id=user.id,
            )
    await deps.publish_changed(
        UserChanged(
            user_id=row.id, role=row.role, is_active=row.is_active, email=row.email, changed_at=_now()
        )
    )
    return _public(row)


async def _lock_target_and_admins(s: AsyncSession, user_id: Any) -> Any:
    # Lock every active admin in one order first, so two admins demoting each other cannot both win.
    await s.execute(
        select(users.c.id)
        .where(users.c.role == "admin", users.c.is_active)
        .order_by(users.c.id)
        .with_for_update()
    )
    user = await _user_by_id(s, user_id, lock=True)
    if user is None:
        raise NotFound("There is no account with this id.")
    return user


async def _refuse_last_admin(s: AsyncSession, user: Any) -> None:
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


async def admin_delete_user(cmd: AdminUserRef, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _lock_target_and_admins(s, cmd.user_id)
        await _refuse_last_admin(s, user)
        live = await _live_session_ids(s, user.id)
        await deps.state.revoke_sessions(live)
        await deps.state.put_user(user.id, role=user.role, active=False, cut_off_tokens=True)
        await s.execute(delete(users).where(users.c.id == user.id))  # sessions and tokens cascade
        await audit(
            s, "user.deleted", ctx, actor_id=actor.user_id, target_id=user.id, sessions_ended=len(live)
        )
    await deps.publish_deleted(UserDeleted(user_id=user.id, deleted_at=_now()))
    return Ack(message="The account is deleted; every service forgets it.")


async def admin_end_sessions(cmd: AdminUserRef, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _user_by_id(s, cmd.user_id)
        if user is None:
            raise NotFound("There is no account with this id.")
        ended = await _end_all_sessions(s, deps, ctx, user, "ended_by_admin", actor_id=actor.user_id)
    return Ack(message=f"{len(ended)} session(s) ended.")


async def admin_start_reset(cmd: AdminUserRef, deps: AuthDeps, ctx: Ctx) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await _user_by_id(s, cmd.user_id)
        if user is None:
            raise NotFound("There is no account with this id.")
        token = await _new_action_token(s, deps, user.id, "reset")
        await audit(s, "password.reset_started", ctx, actor_id=actor.user_id, target_id=user.id)
    await _mail_reset(deps, user.email, token)
    return Ack(message=f"A password-reset link was sent to {user.email}.")


async def admin_audit(cmd: ListAudit, deps: AuthDeps, ctx: Ctx) -> AuditPage:
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


# ---- housekeeping --------------------------------------------------------------------------------------

ENDED_SESSION_RETENTION = timedelta(days=30)


async def housekeeping(deps: AuthDeps) -> int:
    """Forget what can no longer matter; returns how many revocation keys were dropped.

    A revoked session's `session.<sid>` key can go once every access token of that session has
    expired (they were all issued before the revocation), and sessions that ended or expired a month
    ago go with their rotation history. Safe to run from several replicas at once.
    """
    now = _now()
    safe_before = now - timedelta(seconds=deps.config.access_ttl_s + 120)
    revoked = [uuid.UUID(sid) for sid in list(deps.state.verifier.revoked_sessions) if _is_uuid(sid)]
    async with deps.db.transaction() as s:
        still_needed = set()
        if revoked:
            still_needed = set(
                (
                    await s.execute(
                        select(sessions.c.id).where(
                            sessions.c.id.in_(revoked),
                            or_(sessions.c.revoked_at.is_(None), sessions.c.revoked_at >= safe_before),
                        )
                    )
                ).scalars()
            )
        old = now - ENDED_SESSION_RETENTION
        await s.execute(delete(sessions).where(or_(sessions.c.revoked_at < old, sessions.c.expires_at < old)))
        await s.execute(delete(action_tokens).where(action_tokens.c.expires_at < old))
    # A session missing from the table belonged to a deleted user, whose state refuses every token.
    droppable = [sid for sid in revoked if sid not in still_needed]
    await deps.state.forget_sessions(droppable)
    return len(droppable)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
