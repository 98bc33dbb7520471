"""Bootstrapping administrators: `atrium admin create` and the tests' `new_admin` fixture use this.

There are no default credentials; the first admin is made here (idempotently) against the auth
database. A new account is announced with `events.auth.user_registered`, a promotion with
`events.auth.user_changed`, both through the auth outbox in the same transaction: with a NATS
connection they are published at once (and a promotion updates the user's live state in the
`auth_state` bucket, so tokens minted before it are refreshed); without one, the auth service's
relay publishes them when it runs.

An existing account whose address was never confirmed is not promoted: whoever registered it chose
its password, so registering `admin@corp.com` first would make a stranger the administrator. It is
refused, unless `take_over` is asked for explicitly (`--reset-password`): then it gets the password
given here, its address counts as confirmed (the operator vouches for it), and every session it had
ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict
from contracts.auth import (
    AUTH_STATE_BUCKET,
    USER_CHANGED,
    USER_REGISTERED,
    UserChanged,
    UserRegistered,
    UserState,
)
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.jetstream import ensure_kv
from services.kit.outbox import Outbox, jetstream_publisher

from . import passwords
from .policy import PasswordPolicy
from .rows import UserRow
from .tables import action_tokens, audit_log, outbox, sessions, users

Outcome = Literal["created", "promoted", "taken_over", "unchanged"]


@dataclass
class AdminResult:
    user_id: uuid.UUID
    email: str
    outcome: Outcome


async def ensure_admin(
    db: Database,
    email: str,
    password: str,
    *,
    policy: PasswordPolicy | None = None,
    nc: Any = None,
    take_over: bool = False,
) -> AdminResult:
    """Create `email` as an active admin, or promote/reactivate the existing, confirmed account. The
    password is only used (and checked against the policy) for a new account, or with `take_over` for an
    existing unconfirmed one; an unconfirmed account is refused otherwise (`Conflict`)."""
    email = email.strip()
    box = Outbox(outbox, db, jetstream_publisher(nc.jetstream()) if nc is not None else _relay_later)
    ended: list[uuid.UUID] = []
    async with db.transaction() as s:
        row = (
            await s.execute(select(users).where(func.lower(users.c.email) == email.lower()).with_for_update())
        ).one_or_none()
        outcome: Outcome
        if row is None:
            pw_hash = await _new_password_hash(password, email, policy)
            row = (
                await s.execute(
                    insert(users)
                    .values(
                        id=uuid.uuid4(),
                        email=email,
                        password_hash=pw_hash,
                        role="admin",
                        is_active=True,
                        email_verified=True,
                    )
                    .returning(users)
                )
            ).one()
            outcome = "created"
        elif not row.email_verified:
            if not take_over:
                raise Conflict(
                    f"An account for {row.email} exists but its address was never confirmed, so whoever "
                    "registered it chose its password; it is not made an administrator. Run again with "
                    "--reset-password to give it this password and end its sessions, or have the owner "
                    "confirm the address first."
                )
            pw_hash = await _new_password_hash(password, email, policy)
            row = (
                await s.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(
                        role="admin",
                        is_active=True,
                        email_verified=True,
                        password_hash=pw_hash,
                        updated_at=func.now(),
                    )
                    .returning(users)
                )
            ).one()
            ended = await _end_every_session(s, row.id)
            outcome = "taken_over"
        elif row.role != "admin" or not row.is_active:
            row = (
                await s.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(role="admin", is_active=True, updated_at=func.now())
                    .returning(users)
                )
            ).one()
            outcome = "promoted"
        else:
            outcome = "unchanged"
        if outcome != "unchanged":
            details: dict[str, Any] = {}
            if outcome == "taken_over":  # the session ids let the auth service store them in auth_state
                details = {"sessions_ended": len(ended), "sessions": [str(i) for i in ended]}
            await record_audit(
                s, audit_log, Ctx(request_id=""), f"admin.{outcome}", target_id=row.id, via="cli", **details
            )
            await _enqueue_announcement(s, box, row, outcome)
    if nc is not None and outcome != "unchanged":
        await box.flush()
        if outcome in ("promoted", "taken_over"):
            await _put_admin_state(nc, row, ended)
    # Without NATS, the auth service writes the ended sessions to `auth_state` from the database when it
    # starts (`AuthState.reconcile`), before anything is served.
    return AdminResult(row.id, row.email, outcome)


async def _new_password_hash(password: str, email: str, policy: PasswordPolicy | None) -> str:
    (policy or PasswordPolicy.from_env()).enforce(password, email)
    return await passwords.hash_password(password)


async def _end_every_session(s: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """End the account's sessions and spend its mailed links (the whoever-registered-it's, not ours)."""
    now = datetime.now(UTC)
    await s.execute(
        update(action_tokens)
        .where(action_tokens.c.user_id == user_id, action_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return list(
        (
            await s.execute(
                update(sessions)
                .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason="password_reset", successor_enc=None)
                .returning(sessions.c.id)
            )
        ).scalars()
    )


async def _enqueue_announcement(s: AsyncSession, box: Outbox, row: UserRow, outcome: Outcome) -> None:
    if outcome == "created":
        event = UserRegistered(
            user_id=row.id,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            registered_at=row.created_at,
        )
        await box.enqueue(s, USER_REGISTERED, event, msg_id=f"user_registered:{row.id}")
        return
    changed_at = datetime.now(UTC)
    changed = UserChanged(
        user_id=row.id, role="admin", is_active=True, email=row.email, changed_at=changed_at
    )
    await box.enqueue(s, USER_CHANGED, changed, msg_id=f"user_changed:{row.id}:{changed_at.timestamp()}")


async def _put_admin_state(nc: Any, row: UserRow, ended: list[uuid.UUID]) -> None:
    kv = await ensure_kv(nc.jetstream(), AUTH_STATE_BUCKET)
    for sid in ended:
        await kv.put(f"session.{sid}", b"revoked")
    try:  # keep the user's cut-off for old tokens; only role and active change
        entry = await kv.get(f"user.{row.id}")
        state = UserState.model_validate_json(entry.value or b"{}")
    except Exception:
        state = UserState()
    changes: dict[str, Any] = {"active": True, "role": "admin"}
    if ended:  # every token of the taken-over account is refused, not only those of known sessions
        changes["tokens_valid_after"] = float(int(datetime.now(UTC).timestamp()))
    state = state.model_copy(update=changes)
    await kv.put(f"user.{row.id}", state.model_dump_json().encode())


async def _relay_later(subject: str, body: bytes, headers: dict[str, str]) -> None:
    raise RuntimeError("not connected to NATS: the auth service's outbox relay publishes this")
