"""Passwords: changing one while signed in, and the forgot/reset flow by a link sent by mail."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update

from contracts import NotFound
from contracts.auth import Ack, ChangePassword, ForgotPassword, ResetPassword
from services.kit import passwords
from services.kit.context import Ctx

from .. import tokens
from ..tables import action_tokens, users
from . import notices
from .common import (
    AuthDeps,
    audit,
    check_password_of,
    client_key,
    email_key,
    end_all_sessions,
    end_sessions,
    live_session_ids,
    user_by_email,
    user_by_id,
)
from .links import invalidate_link_tokens, mail_reset, new_link_token, take_link_token

FORGOT_ANSWER = (
    "If an account exists for this address, a link to reset its password is on its way. "
    "It is valid for 30 minutes."
)


async def change_password(cmd: ChangePassword, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        row = await user_by_id(s, actor.user_id)
    if row is None:
        raise NotFound("This account no longer exists.")
    await check_password_of(deps, row, cmd.current_password.get_secret_value(), ctx)
    new = cmd.new_password.get_secret_value()
    deps.config.policy.enforce(new, row.email, "new_password")
    new_hash = await passwords.hash_password(new)
    async with deps.db.transaction() as s:
        await s.execute(
            update(users).where(users.c.id == row.id).values(password_hash=new_hash, updated_at=func.now())
        )
        await invalidate_link_tokens(s, row.id, "reset")
        others = await live_session_ids(s, row.id, except_id=uuid.UUID(actor.session_id))
        ended = await end_sessions(
            s, deps, ctx, others, "password_changed", actor_id=row.id, target_id=row.id
        )
        await audit(s, ctx, "password.changed", actor_id=row.id, target_id=row.id, sessions_ended=len(ended))
    await notices.password_changed(deps, ctx, row.email)
    return Ack(message=f"Password changed; {len(ended)} other session(s) ended.")


async def forgot_password(cmd: ForgotPassword, ctx: Ctx, deps: AuthDeps) -> Ack:
    account = email_key(str(cmd.email))
    await deps.limiter.take("forgot_ip", client_key(ctx))
    await deps.limiter.take("forgot_account", account)  # keyed by the address, existing or not
    async with deps.db.transaction() as s:
        row = await user_by_email(s, account)
        token = None
        if row is not None and row.is_active:
            token = await new_link_token(s, deps, row.id, "reset")
        await audit(
            s,
            ctx,
            "password.reset_requested",
            target_id=row.id if row else None,
            email=account,
            matched=token is not None,
        )
    if row is not None and token is not None:
        await mail_reset(deps, row.email, token)
    return Ack(message=FORGOT_ANSWER)


async def reset_password(cmd: ResetPassword, ctx: Ctx, deps: AuthDeps) -> Ack:
    await deps.limiter.take("verify_ip", client_key(ctx))
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
        tok = await take_link_token(s, cmd.token.get_secret_value(), "reset")
        user = await user_by_id(s, tok.user_id, lock=True)
        if user is None:  # the link's account was deleted (its links go with it; a race at most)
            raise NotFound("This account no longer exists.")
        # The link came by mail, so its reader controls the address: it counts as confirmed from now on.
        await s.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(password_hash=new_hash, email_verified=True, updated_at=func.now())
        )
        await invalidate_link_tokens(s, user.id, "reset")
        ended = await end_all_sessions(s, deps, ctx, user, "password_reset", actor_id=user.id)
        await audit(s, ctx, "password.reset", actor_id=user.id, target_id=user.id, sessions_ended=len(ended))
    await notices.password_changed(deps, ctx, user.email)
    return Ack(message="Password changed; sign in with the new password. Every session has ended.")
