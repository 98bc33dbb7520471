"""Auth use cases as plain functions of a command and their dependencies (no transport here)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from contracts import Conflict, Invalid, NotFound, Unauthenticated
from contracts.auth import LoginRequest, RegisterUser, TokenPair, UserPublic, UserRegistered

from services.kit.bus import Ctx
from services.kit.db import Database

from . import passwords, tokens
from .keys import KeyRing
from .tables import audit_log, sessions, users

log = logging.getLogger("atrium.auth")

MIN_PASSWORD = 12
MAX_PASSWORD = 128

PublishRegistered = Callable[[UserRegistered], Awaitable[None]]


@dataclass
class AuthDeps:
    db: Database
    keys: KeyRing
    publish_registered: PublishRegistered


def _public(row) -> UserPublic:  # type: ignore[no-untyped-def]
    return UserPublic(id=row.id, email=row.email, full_name=row.full_name, role=row.role,
                      is_active=row.is_active, email_verified=row.email_verified, created_at=row.created_at)


def check_password_rules(password: str, email: str) -> list[str]:
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        problems.append(f"at most {MAX_PASSWORD} characters")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and local in password.lower():
        problems.append("must not contain the email address")
    return problems


async def register_user(cmd: RegisterUser, deps: AuthDeps, ctx: Ctx) -> UserPublic:
    password = cmd.password.get_secret_value()
    email = str(cmd.email).strip()
    failed = check_password_rules(password, email)
    if failed:
        raise Invalid("The password does not meet the rules: " + "; ".join(failed) + ".",
                      [{"field": "password", "message": m} for m in failed])
    pw_hash = await passwords.hash_password(password)
    user_id = uuid.uuid4()
    async with deps.db.transaction() as s:
        # The first account of an installation is not special: admins come from `atrium admin create`.
        try:
            row = (await s.execute(
                insert(users).values(id=user_id, email=email, password_hash=pw_hash, full_name=cmd.full_name,
                                     role="user").returning(users))).one()
        except IntegrityError:
            raise Conflict("An account with this email may already exist; sign in or reset the password.") from None
        await s.execute(insert(audit_log).values(id=uuid.uuid4(), action="user.registered", actor_id=user_id,
                                                 target_id=user_id, ip=ctx.client_ip or None,
                                                 request_id=ctx.request_id))
    user = _public(row)
    await deps.publish_registered(UserRegistered(user_id=user.id, email=user.email, full_name=user.full_name,
                                                 role=user.role, registered_at=user.created_at))
    return user


async def login(cmd: LoginRequest, deps: AuthDeps, ctx: Ctx) -> TokenPair:
    email = str(cmd.email).strip()
    async with deps.db.session() as s:
        row = (await s.execute(select(users).where(func.lower(users.c.email) == email.lower()))).one_or_none()
    ok = await passwords.verify_password(row.password_hash if row else None, cmd.password.get_secret_value())
    if not ok or row is None or not row.is_active:
        async with deps.db.transaction() as s:
            await s.execute(insert(audit_log).values(
                id=uuid.uuid4(), action="login.failed", target_id=row.id if row else None,
                ip=ctx.client_ip or None, request_id=ctx.request_id))
        raise Unauthenticated("Wrong email or password, or the account is not active.")
    refresh = tokens.new_refresh_token()
    ttl = tokens.REFRESH_TTL_REMEMBER_S if cmd.remember_me else tokens.REFRESH_TTL_S
    session_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with deps.db.transaction() as s:
        if passwords.needs_rehash(row.password_hash):
            new_hash = await passwords.hash_password(cmd.password.get_secret_value())
            await s.execute(update(users).where(users.c.id == row.id).values(password_hash=new_hash))
        await s.execute(insert(sessions).values(
            id=session_id, user_id=row.id, refresh_hash=tokens.hash_token(refresh), remember_me=cmd.remember_me,
            created_at=now, last_used_at=now, expires_at=now + timedelta(seconds=ttl),
            ip=ctx.client_ip or None, user_agent=(ctx.user_agent or None) and ctx.user_agent[:400]))
        await s.execute(insert(audit_log).values(id=uuid.uuid4(), action="login.succeeded", actor_id=row.id,
                                                 target_id=row.id, ip=ctx.client_ip or None,
                                                 request_id=ctx.request_id))
    access = tokens.issue_access_token(deps.keys, user_id=row.id, role=row.role, session_id=session_id)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=tokens.ACCESS_TTL_S,
                     refresh_expires_in=ttl, user=_public(row))


async def me(deps: AuthDeps, ctx: Ctx) -> UserPublic:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        row = (await s.execute(select(users).where(users.c.id == actor.user_id))).one_or_none()
    if row is None:
        raise NotFound("This account no longer exists.")
    return _public(row)
