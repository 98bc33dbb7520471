"""Accounts: registration, the signed-in account, and its email address (confirm, resend, change)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Empty, Invalid, NotFound
from contracts.auth import (
    USER_REGISTERED,
    Ack,
    ChangeEmail,
    RegisterUser,
    SetUsername,
    UserPublic,
    UserRegistered,
    VerifyEmail,
)
from services.kit import passwords
from services.kit.context import Ctx

from ..rows import UserRow
from ..tables import action_tokens, users
from . import notices
from .common import (
    AuthDeps,
    announce_user_changed,
    audit,
    check_password_of,
    client_key,
    email_key,
    now,
    user_by_email,
    user_by_id,
    user_public,
)
from .factors import account_view_by_id
from .links import (
    invalidate_link_tokens,
    mail_known_address,
    mail_verification,
    new_link_token,
    take_link_token,
)


async def register_user(cmd: RegisterUser, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    """A new account, unconfirmed until its address is. An address that already has an account gets the
    same answer, made with the same work (one password hash, one insert, one mail), and a mail saying so:
    registering tells nobody whether an address is known (and signing in needs a confirmed address, so
    signing in right after cannot tell either)."""
    email = str(cmd.email).strip()
    await deps.limiter.take("register_ip", client_key(ctx))
    await deps.limiter.take("register_account", email_key(email))  # mails to one address, whichever way
    password = cmd.password.get_secret_value()
    deps.config.policy.enforce(password, email)
    pw_hash = await passwords.hash_password(password)
    user_id = uuid.uuid4()
    try:
        async with deps.db.transaction() as s:
            # No account is special: admins come from `atrium admin create`.
            row = (
                await s.execute(
                    insert(users)
                    .values(
                        id=user_id,
                        email=email,
                        username=cmd.username,
                        password_hash=pw_hash,
                        full_name=cmd.full_name,
                        role="user",
                    )
                    .returning(users)
                )
            ).one()
            await audit(s, ctx, "user.registered", actor_id=user_id, target_id=user_id)
            token = await new_link_token(s, deps, user_id, "verify")
            await deps.outbox.enqueue(
                s,
                USER_REGISTERED,
                UserRegistered(
                    user_id=row.id,
                    email=row.email,
                    full_name=row.full_name,
                    role=row.role,
                    registered_at=row.created_at,
                ),
                msg_id=f"user_registered:{row.id}",
            )
    except IntegrityError as exc:
        # A username is public: saying it is taken tells nothing about any address.
        if _username_taken(exc):
            raise Conflict(USERNAME_TAKEN, [{"field": "username"}]) from None
        return await _registered_again(cmd, email, ctx, deps)
    await mail_verification(deps, email, token)
    await deps.outbox.flush()
    return user_public(row)


async def _registered_again(cmd: RegisterUser, email: str, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    """The answer to registering a known address: shaped like a new account (an id nobody holds), and a
    mail to the address's owner instead of a link. The password sent is not stored anywhere."""
    async with deps.db.transaction() as s:
        existing = await user_by_email(s, email)
        await audit(
            s,
            ctx,
            "user.registered_again",
            target_id=existing.id if existing else None,
            email=email_key(email),
        )
    await mail_known_address(deps, existing.email if existing else email)
    return UserPublic(
        id=uuid.uuid4(),
        email=email,
        username=cmd.username,
        full_name=cmd.full_name,
        role="user",
        is_active=True,
        email_verified=False,
        created_at=now(),
    )


async def me(_: Empty, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    actor = ctx.require_actor()
    view = await account_view_by_id(deps.db, actor.user_id)
    if view is None:
        raise NotFound("This account no longer exists.")
    return view


async def verify_email(cmd: VerifyEmail, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    await deps.limiter.take("verify_ip", client_key(ctx))
    async with deps.db.transaction() as s:
        tok = await take_link_token(s, cmd.token.get_secret_value(), "verify")
        user = await user_by_id(s, tok.user_id, lock=True)
        if user is None:  # the link's account was deleted (its links go with it; a race at most)
            raise NotFound("This account no longer exists.")
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
            await invalidate_link_tokens(s, user.id, "verify")
            await audit(
                s,
                ctx,
                "email.changed",
                actor_id=user.id,
                target_id=user.id,
                old=user.email,
                new=tok.new_email,
            )
            await announce_user_changed(s, deps, row)
        else:
            await audit(s, ctx, "email.verified", actor_id=user.id, target_id=user.id)
    await deps.outbox.flush()
    if tok.new_email:
        await notices.email_changed(deps, ctx, user.email, tok.new_email)
    return user_public(row)


async def resend_verification(_: Empty, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    await deps.limiter.take("verify_account", str(actor.user_id))
    async with deps.db.transaction() as s:
        row = await user_by_id(s, actor.user_id)
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
            .values(used_at=now())
        )
        token = await new_link_token(s, deps, row.id, "verify")
    await mail_verification(deps, row.email, token)
    return Ack(message=f"A new confirmation link is on its way to {row.email}.")


async def change_email(cmd: ChangeEmail, ctx: Ctx, deps: AuthDeps) -> Ack:
    """Move the account to a new address once the new address confirms. An address that belongs to another
    account gets the same answer and a mail telling its owner, not a link: nobody learns which addresses
    have accounts by trying to move to them."""
    actor = ctx.require_actor()
    new_email = str(cmd.new_email).strip()
    async with deps.db.session() as s:
        row = await user_by_id(s, actor.user_id)
        if row is None:
            raise NotFound("This account no longer exists.")
        await check_password_of(deps, row, cmd.password.get_secret_value(), ctx)
        if email_key(new_email) == email_key(row.email):
            raise Invalid("This is already your email address.", [{"field": "new_email"}])
        await deps.limiter.take(
            "register_account", email_key(new_email)
        )  # mails to one address, whichever way
        taken = await user_by_email(s, new_email) is not None
    async with deps.db.transaction() as s:
        await invalidate_link_tokens(s, row.id, "verify")
        token = None if taken else await new_link_token(s, deps, row.id, "verify", new_email=new_email)
        await audit(
            s, ctx, "email.change_requested", actor_id=row.id, target_id=row.id, new=new_email, taken=taken
        )
    if token is None:
        await mail_known_address(deps, new_email)
    else:
        await mail_verification(deps, new_email, token)
    await deps.mailer.send(
        row.email,
        "Your Atrium email address is being changed",
        f"Someone signed in to your account asked to change its address to {new_email}.\n"
        "If this was not you, change your password now.\n",
    )
    return Ack(message=f"Open the link we sent to {new_email} to confirm the change.")


USERNAME_TAKEN = "This username is taken; choose another."


def _username_taken(exc: IntegrityError) -> bool:
    return "uq_users_username_lower" in str(exc.orig)


async def set_username(cmd: SetUsername, ctx: Ctx, deps: AuthDeps) -> UserPublic:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, actor.user_id, lock=True)
        if user is None:
            raise NotFound("This account no longer exists.")
        if user.username == cmd.username:
            return user_public(user)
        try:
            async with s.begin_nested():
                row = (
                    await s.execute(
                        update(users)
                        .where(users.c.id == user.id)
                        .values(username=cmd.username, updated_at=func.now())
                        .returning(users)
                    )
                ).one()
        except IntegrityError:
            raise Conflict(USERNAME_TAKEN, [{"field": "username"}]) from None
        await audit(
            s,
            ctx,
            "username.changed",
            actor_id=user.id,
            target_id=user.id,
            old=user.username,
            new=cmd.username,
        )
    return user_public(row)


async def create_passwordless_account(
    s: AsyncSession, deps: AuthDeps, ctx: Ctx, email: str, full_name: object, *, via: str
) -> UserRow:
    """An account vouched for by an outside server (single sign-on, the external auth server), with a verified
    email and no usable password, announced in the caller's transaction; the existing one if a racing
    sign-in created it a moment ago."""
    # No password: the account signs in through the provider (or sets one with "forgot password").
    unusable = await passwords.hash_password(secrets.token_urlsafe(32))
    name = full_name if isinstance(full_name, str) else None
    try:
        async with s.begin_nested():
            row: UserRow = (
                await s.execute(
                    insert(users)
                    .values(
                        id=uuid.uuid4(),
                        email=email,
                        password_hash=unusable,
                        full_name=(name or None) and name[:200],
                        role="user",
                        email_verified=True,
                    )
                    .returning(users)
                )
            ).one()
    except IntegrityError:  # created by a racing sign-in a moment ago
        found = await user_by_email(s, email)
        assert found is not None
        return found
    await audit(s, ctx, "user.registered", actor_id=row.id, target_id=row.id, via=via)
    await deps.outbox.enqueue(
        s,
        USER_REGISTERED,
        UserRegistered(
            user_id=row.id,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            registered_at=row.created_at,
        ),
        msg_id=f"user_registered:{row.id}",
    )
    return row
