"""Sessions: sign-in, refresh with rotation, sign-out, the list of a user's devices, and the public keys
that verify the access tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn
from uuid import UUID

from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, NotFound, Unauthenticated
from contracts.auth import (
    Ack,
    EndSession,
    Jwks,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    SessionInfo,
    SessionList,
    TokenPair,
)
from services.kit import passwords
from services.kit.context import Ctx

from .. import metrics as auth_metrics
from .. import tokens
from ..rows import SessionRow, UserRow
from ..tables import refresh_history, sessions
from .common import (
    AuthDeps,
    account_client_key,
    account_key,
    audit,
    client_key,
    end_all_sessions,
    end_sessions,
    now,
    user_by_id,
    user_by_login,
)
from .devices import describe_device
from .external import enabled_settings, external_login
from .factors import account_view, factors_of_user
from .signin import count_failed_signin, counting_lockouts, open_session, token_pair
from .two_step import require_second_step

# One answer for every refusal, so it tells nothing about the account: an unknown address or username, a
# wrong password, a deactivated account and an address not confirmed yet all read the same.
BAD_LOGIN = (
    "Wrong email, username or password, or the account is not active, or its address is not confirmed yet "
    "(open the link we mailed you, or reset the password)."
)
BAD_REFRESH = "This refresh token is not valid (expired, ended or unknown); sign in again."


async def login(cmd: LoginRequest, ctx: Ctx, deps: AuthDeps) -> TokenPair:
    """Sign in. Failures count per account and client (that client alone is refused after a few) and per
    account (past a limit every attempt on it waits a little longer, from anywhere, but none is refused):
    a stranger's guessing never locks the owner out (services/kit/ratelimit.py). The account is named by
    its email or its username; both count on the account's email."""
    login_name = cmd.email.strip()
    with counting_lockouts():
        await deps.limiter.take("login_ip", client_key(ctx))
        async with deps.db.session() as s:
            row = await user_by_login(s, login_name)
        account = account_key(row, login_name)
        await deps.limiter.check("login_client", account_client_key(account, ctx))
    delay = await deps.limiter.delay_s("login_account", account)
    if delay:
        await asyncio.sleep(delay)
    external = await enabled_settings(deps)
    if external is not None and (row is None or row.role != "admin"):  # local admins always sign in here

        async def refuse(reason: str) -> NoReturn:
            await _refuse_login(deps, ctx, row, account, reason, delay)

        return await external_login(
            deps, ctx, external, login_name, cmd.password.get_secret_value(), cmd.remember_me, row, refuse
        )
    # Always verify (against a dummy hash for an unknown account) so every failure takes as long.
    ok = await passwords.verify_password(row.password_hash if row else None, cmd.password.get_secret_value())
    unconfirmed = row is not None and not row.email_verified and deps.config.signin_requires_verified_email
    if not ok or row is None or not row.is_active or unconfirmed:
        reason = (
            "unknown_account"
            if row is None
            else ("wrong_password" if not ok else ("inactive" if not row.is_active else "unconfirmed"))
        )
        await _refuse_login(deps, ctx, row, account, reason, delay)
    async with deps.db.session() as s:
        found = await factors_of_user(s, row.id)
    if found.any:
        await require_second_step(deps, ctx, row, found, remember_me=cmd.remember_me)
    return await open_session(
        deps,
        ctx,
        row,
        remember_me=cmd.remember_me,
        method="password",
        password=cmd.password.get_secret_value(),
    )


async def _refuse_login(
    deps: AuthDeps, ctx: Ctx, row: UserRow | None, account: str, reason: str, delay: float = 0.0
) -> NoReturn:
    await deps.limiter.hit("login_client", account_client_key(account, ctx))
    await deps.limiter.hit("login_account", account)
    async with deps.db.transaction() as s:
        await audit(
            s,
            ctx,
            "login.failed",
            target_id=row.id if row else None,
            email=account,
            reason=reason,
            delayed_s=delay,
        )
    count_failed_signin(reason)
    raise Unauthenticated(BAD_LOGIN)


Rotated = tuple[UserRow, SessionRow, str]  # the user, the session, the successor refresh token


async def refresh(cmd: RefreshRequest, ctx: Ctx, deps: AuthDeps) -> TokenPair:
    """Rotate: the presented token is replaced by a new one, once.

    Racing refreshes with the same token serialise on the session row (`FOR UPDATE`). The winner
    rotates and stores the successor encrypted under a key derived from the presented token; a loser
    that presents that token within `refresh_grace_s` decrypts and receives the same successor.
    Any other use of a rotated token is reuse: the whole session is revoked.
    """
    await deps.limiter.take("refresh_ip", client_key(ctx))
    presented = cmd.refresh_token.get_secret_value()
    async with deps.db.transaction() as s:
        # Failures that change state (reuse, expiry) return their error so the transaction commits.
        outcome = await _rotate(s, deps, ctx, presented)
    if isinstance(outcome, Unauthenticated):
        raise outcome
    user, session, successor = outcome
    await deps.state.sync_user(user.id, role=user.role, active=user.is_active)
    async with deps.db.session() as s:
        view = await account_view(s, user)
    return token_pair(deps, user, session.id, successor, session.expires_at, view)


async def _rotate(s: AsyncSession, deps: AuthDeps, ctx: Ctx, presented: str) -> Rotated | Unauthenticated:
    h = tokens.hash_token(presented)
    at = now()
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
    if row.expires_at <= at or idle_deadline <= at:
        await end_sessions(s, deps, ctx, [row.id], "expired", target_id=row.user_id)
        return Unauthenticated(BAD_REFRESH, {"reason": "expired"})
    user = await user_by_id(s, row.user_id)
    if user is None or not user.is_active:
        return Unauthenticated(BAD_REFRESH, {"reason": "inactive"})
    await deps.limiter.take("refresh_account", str(row.user_id))  # raises before anything changed
    if row.refresh_hash == h:
        successor = tokens.new_refresh_token()
        await s.execute(
            update(sessions)
            .where(sessions.c.id == row.id)
            .values(
                refresh_hash=tokens.hash_token(successor),
                previous_hash=h,
                rotated_at=at,
                last_used_at=at,
                successor_enc=tokens.seal_successor(presented, successor),
            )
        )
        await s.execute(insert(refresh_history).values(token_hash=h, session_id=row.id, rotated_at=at))
        return user, row, successor
    # The previous token again: a racing tab within the grace window gets the same successor; else reuse.
    in_grace = row.rotated_at is not None and at - row.rotated_at <= timedelta(
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
    await s.execute(update(sessions).where(sessions.c.id == row.id).values(last_used_at=at))
    return user, row, successor


async def _revoke_reused(s: AsyncSession, deps: AuthDeps, ctx: Ctx, session_id: UUID) -> None:
    row = (await s.execute(select(sessions.c.user_id).where(sessions.c.id == session_id))).one_or_none()
    if row is None:
        return
    await audit(s, ctx, "refresh.reuse_detected", target_id=row.user_id, session_id=str(session_id))
    auth_metrics.REFRESH_REUSE.inc()
    await end_sessions(s, deps, ctx, [session_id], "refresh_reuse", target_id=row.user_id)


async def logout(cmd: LogoutRequest, ctx: Ctx, deps: AuthDeps) -> Ack:
    async with deps.db.transaction() as s:
        if ctx.actor is not None:
            sid, uid = UUID(ctx.actor.session_id), ctx.actor.user_id
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
        await end_sessions(s, deps, ctx, [sid], "logout", actor_id=uid, target_id=uid)
        await audit(s, ctx, "logout", actor_id=uid, target_id=uid, session_id=str(sid))
    return Ack(message="Signed out.")


async def logout_all(_: Empty, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, actor.user_id)
        if user is None:
            raise NotFound("This account no longer exists.")
        ended = await end_all_sessions(s, deps, ctx, user, "logout_all", actor_id=actor.user_id)
        await audit(s, ctx, "logout.all", actor_id=actor.user_id, target_id=actor.user_id, count=len(ended))
    return Ack(message=f"Signed out of {len(ended)} session(s).")


async def list_sessions(_: Empty, ctx: Ctx, deps: AuthDeps) -> SessionList:
    actor = ctx.require_actor()
    at = now()
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(sessions)
                .where(
                    sessions.c.user_id == actor.user_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > at,
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
        if r.last_used_at + timedelta(seconds=deps.config.idle_timeout(r.remember_me)) > at
    ]
    return SessionList(items=items)


async def end_session(cmd: EndSession, ctx: Ctx, deps: AuthDeps) -> Ack:
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
        await end_sessions(
            s, deps, ctx, [cmd.session_id], "ended_by_user", actor_id=actor.user_id, target_id=actor.user_id
        )
    return Ack(message="The session has ended.")


async def jwks(_: Empty, ctx: Ctx, deps: AuthDeps) -> Jwks:
    return deps.keys.jwks()
