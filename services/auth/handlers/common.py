"""What the auth handlers share: their dependencies, the account lookups, the audit helper, the event
announcing an account's new state, and ending sessions (sign-out, password changes and admins do)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Unauthenticated
from contracts.auth import USER_CHANGED, UserChanged, UserPublic
from services.kit import passwords
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.outbox import Outbox
from services.kit.ratelimit import BoundRateLimiter
from services.kit.secretbox import SecretBox

from ..config import AuthConfig
from ..keys import KeyRing
from ..mailer import Mailer
from ..oidc import OidcClients
from ..rows import UserRow
from ..state import AuthState
from ..tables import audit_log, external_tokens, sessions, users
from ..upstream import ExternalAuth

BUS_CLIENT = "bus"

# Why a session ended (sessions.revoked_reason).
EndReason = Literal[
    "logout",
    "logout_all",
    "expired",
    "refresh_reuse",
    "deactivated",
    "password_changed",
    "password_reset",
    "ended_by_user",
    "ended_by_admin",
    "external_refused",
]


@dataclass
class AuthDeps:
    db: Database
    outbox: Outbox  # events.auth.* leave through it, in the transaction of the change
    keys: KeyRing
    config: AuthConfig
    limiter: BoundRateLimiter  # windows in auth's database, shared by every auth process
    mailer: Mailer
    state: AuthState
    secrets: SecretBox  # second-factor secrets and provider credentials, encrypted at rest
    oidc: OidcClients  # single sign-on: one relying-party client per identity provider
    external: ExternalAuth  # the external auth server's client (rebuilt when its settings change)


def now() -> datetime:
    return datetime.now(UTC)


def user_public(row: UserRow) -> UserPublic:
    return UserPublic(
        id=row.id,
        email=row.email,
        username=row.username,
        full_name=row.full_name,
        role=row.role,
        is_active=row.is_active,
        email_verified=row.email_verified,
        created_at=row.created_at,
    )


def client_key(ctx: Ctx) -> str:
    """The per-IP rate-limit key. Direct bus callers (no `x-client-ip`, i.e. not via the gateway)
    share one bucket, so skipping the gateway never means skipping the limit."""
    return ctx.client_ip or BUS_CLIENT


def email_key(email: str) -> str:
    return email.strip().lower()


async def audit(
    s: AsyncSession,
    ctx: Ctx,
    action: str,
    *,
    actor_id: UUID | None = None,
    target_id: UUID | None = None,
    **details: Any,
) -> None:
    """One audit row in the caller's transaction. Callers pass facts only — never a password or token."""
    await record_audit(s, audit_log, ctx, action, actor_id=actor_id, target_id=target_id, **details)


async def user_by_email(s: AsyncSession, email: str) -> UserRow | None:
    return (await s.execute(select(users).where(func.lower(users.c.email) == email_key(email)))).one_or_none()


async def user_by_username(s: AsyncSession, username: str) -> UserRow | None:
    q = select(users).where(func.lower(users.c.username) == func.lower(username.strip()))
    return (await s.execute(q)).one_or_none()


async def user_by_login(s: AsyncSession, login: str) -> UserRow | None:
    """The account an email address or a username names (a username never contains `@`)."""
    return await (user_by_email(s, login) if "@" in login else user_by_username(s, login))


def account_key(row: UserRow | None, login: str) -> str:
    """The per-account rate-limit key: the account's email whichever way it was named, else what was typed."""
    return email_key(row.email if row is not None else login)


async def user_by_id(s: AsyncSession, user_id: UUID, *, lock: bool = False) -> UserRow | None:
    q = select(users).where(users.c.id == user_id)
    return (await s.execute(q.with_for_update() if lock else q)).one_or_none()


def account_client_key(account: str, ctx: Ctx) -> str:
    """The key of one account as seen from one client (IP), for counting failed sign-ins."""
    return f"{account}|{client_key(ctx)}"


def session_guess_key(row: UserRow, ctx: Ctx) -> str:
    """The key of the signed-in user's guesses (password, second-factor code) in one session."""
    return f"{email_key(row.email)}|session:{ctx.actor.session_id if ctx.actor else client_key(ctx)}"


async def check_password_of(deps: AuthDeps, row: UserRow, password: str, ctx: Ctx) -> None:
    """The signed-in user's current password, before a change that needs it. Wrong guesses are counted per
    session: a stolen access token cannot try passwords for long, and strangers failing to sign in to the
    account do not stop its owner changing their password."""
    key = session_guess_key(row, ctx)
    await deps.limiter.check("password_session", key)
    if not await passwords.verify_password(row.password_hash, password):
        await deps.limiter.hit("password_session", key)
        raise Unauthenticated("The password is wrong.", {"field": "password"})


async def announce_user_changed(s: AsyncSession, deps: AuthDeps, row: UserRow) -> None:
    """`events.auth.user_changed` with the account's new state, in the caller's transaction."""
    changed_at = now()
    await deps.outbox.enqueue(
        s,
        USER_CHANGED,
        UserChanged(
            user_id=row.id, role=row.role, is_active=row.is_active, email=row.email, changed_at=changed_at
        ),
        msg_id=f"user_changed:{row.id}:{changed_at.timestamp()}",
    )


# ---- ending sessions -----------------------------------------------------------------------------------


async def end_sessions(
    s: AsyncSession,
    deps: AuthDeps,
    ctx: Ctx,
    session_ids: Iterable[UUID],
    reason: EndReason,
    *,
    actor_id: UUID | None = None,
    target_id: UUID | None = None,
) -> list[UUID]:
    """Revoke live sessions in the database and in `auth_state`; returns the ids that were live."""
    ids = list(session_ids)
    if not ids:
        return []
    ended = list(
        (
            await s.execute(
                update(sessions)
                .where(sessions.c.id.in_(ids), sessions.c.revoked_at.is_(None))
                .values(revoked_at=now(), revoked_reason=reason, successor_enc=None)
                .returning(sessions.c.id)
            )
        ).scalars()
    )
    if ended:
        # Tokens an outside server gave these sessions are dropped with them.
        await s.execute(delete(external_tokens).where(external_tokens.c.session_id.in_(ended)))
        await audit(
            s,
            ctx,
            "session.ended",
            actor_id=actor_id,
            target_id=target_id,
            reason=reason,
            sessions=[str(i) for i in ended],
        )
        await deps.state.revoke_sessions(ended)
    return ended


async def live_session_ids(s: AsyncSession, user_id: UUID, *, except_id: UUID | None = None) -> list[UUID]:
    q = select(sessions.c.id).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if except_id is not None:
        q = q.where(sessions.c.id != except_id)
    return list((await s.execute(q)).scalars())


async def end_all_sessions(
    s: AsyncSession, deps: AuthDeps, ctx: Ctx, user: UserRow, reason: EndReason, *, actor_id: UUID
) -> list[UUID]:
    ended = await end_sessions(
        s, deps, ctx, await live_session_ids(s, user.id), reason, actor_id=actor_id, target_id=user.id
    )
    await deps.state.put_user(user.id, role=user.role, active=user.is_active, cut_off_tokens=True)
    return ended
