"""Opening a session once the caller has proven who they are, whichever way they did (password, password
and a second factor, a passkey, single sign-on, an external auth server): the session row, the token pair,
the audit row and the notice of a sign-in from a device the account was never used on."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import RateLimited
from contracts.auth import TokenPair, UserPublic
from services.kit import passwords
from services.kit.audit import client_ip
from services.kit.context import Ctx

from .. import metrics as auth_metrics
from .. import tokens
from ..rows import UserRow
from ..tables import known_devices, sessions, users
from . import notices
from .common import AuthDeps, audit, now
from .devices import describe_device
from .factors import account_view

SignInMethod = Literal[
    "password", "password+totp", "password+recovery", "password+passkey", "passkey", "sso", "external"
]


@contextmanager
def counting_lockouts() -> Iterator[None]:
    """A sign-in's rate-limit checks: a refusal is counted as a locked-out sign-in."""
    try:
        yield
    except RateLimited:
        auth_metrics.SIGNINS.labels("refused", "rate_limited").inc()
        auth_metrics.LOCKOUTS.inc()
        raise


def count_failed_signin(reason: str) -> None:
    auth_metrics.SIGNINS.labels("failed", reason).inc()


def token_pair(
    deps: AuthDeps, row: UserRow, session_id: UUID, refresh: str, expires_at: datetime, view: UserPublic
) -> TokenPair:
    access = tokens.issue_access_token(
        deps.keys,
        user_id=row.id,
        role=row.role,
        session_id=session_id,
        ttl_s=deps.config.access_ttl_s,
        second_factor=view.second_factor,
    )
    left = max(0, math.floor((expires_at - now()).total_seconds()))
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=deps.config.access_ttl_s,
        refresh_expires_in=left,
        user=view,
    )


async def open_session(
    deps: AuthDeps,
    ctx: Ctx,
    row: UserRow,
    *,
    remember_me: bool,
    method: SignInMethod,
    password: str | None = None,
    session_id: UUID | None = None,
) -> TokenPair:
    """A new session for `row`, who has proven who they are by `method`. With `password`, an old hash is
    upgraded to the current parameters on the way."""
    refresh_token = tokens.new_refresh_token()
    session_id = session_id or uuid.uuid4()
    started = now()
    expires_at = started + timedelta(seconds=deps.config.refresh_ttl(remember_me))
    async with deps.db.transaction() as s:
        if password is not None and passwords.needs_rehash(row.password_hash):
            new_hash = await passwords.hash_password(password)
            await s.execute(update(users).where(users.c.id == row.id).values(password_hash=new_hash))
        await s.execute(
            sessions.insert().values(
                id=session_id,
                user_id=row.id,
                refresh_hash=tokens.hash_token(refresh_token),
                remember_me=remember_me,
                created_at=started,
                last_used_at=started,
                expires_at=expires_at,
                ip=client_ip(ctx),
                user_agent=(ctx.user_agent or None) and ctx.user_agent[:400],
            )
        )
        await audit(
            s,
            ctx,
            "login.succeeded",
            actor_id=row.id,
            target_id=row.id,
            session_id=str(session_id),
            remember_me=remember_me,
            method=method,
        )
        unknown_device = await _note_device(s, row.id, ctx.user_agent)
        view = await account_view(s, row)
    if unknown_device:
        await notices.new_device(deps, ctx, row.email, describe_device(ctx.user_agent))
    await deps.state.sync_user(row.id, role=row.role, active=row.is_active)
    auth_metrics.SIGNINS.labels("ok", "").inc()
    return token_pair(deps, row, session_id, refresh_token, expires_at, view)


async def _note_device(s: AsyncSession, user_id: UUID, user_agent: str) -> bool:
    """Remember the device; True when the account had signed in before, but never from it."""
    fingerprint = hashlib.sha256((user_agent or "").encode()).hexdigest()
    seen_before = (
        await s.execute(
            select(func.count()).select_from(known_devices).where(known_devices.c.user_id == user_id)
        )
    ).scalar_one()
    inserted: bool = (
        await s.execute(
            pg_insert(known_devices)
            .values(
                user_id=user_id,
                fingerprint=fingerprint,
                device=(describe_device(user_agent) or "")[:120] or None,
            )
            .on_conflict_do_update(
                index_elements=[known_devices.c.user_id, known_devices.c.fingerprint],
                set_={"last_seen_at": func.now()},
            )
            .returning(literal_column("xmax = 0"))  # true for a new row, false for an update
        )
    ).scalar_one()
    return bool(inserted) and seen_before > 0
