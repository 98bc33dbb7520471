"""Bootstrapping administrators: `atrium admin create` and the tests' `new_admin` fixture use this.

There are no default credentials; the first admin is made here (idempotently) against the auth
database. A new account is announced with `events.auth.user_registered`, a promotion with
`events.auth.user_changed`, both through the auth outbox in the same transaction: with a NATS
connection they are published at once (and a promotion updates the user's live state in the
`auth_state` bucket, so tokens minted before it are refreshed); without one, the auth service's
relay publishes them when it runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.auth import (
    AUTH_STATE_BUCKET,
    USER_CHANGED,
    USER_REGISTERED,
    UserChanged,
    UserRegistered,
    UserState,
)
from services.kit import passwords
from services.kit.audit import record_audit
from services.kit.context import Ctx
from services.kit.db import Database
from services.kit.jetstream import ensure_kv
from services.kit.outbox import Outbox, jetstream_publisher

from .policy import PasswordPolicy
from .rows import UserRow
from .tables import audit_log, outbox, users

Outcome = Literal["created", "promoted", "unchanged"]


@dataclass
class AdminResult:
    user_id: uuid.UUID
    email: str
    outcome: Outcome


async def ensure_admin(
    db: Database, email: str, password: str, *, policy: PasswordPolicy | None = None, nc: Any = None
) -> AdminResult:
    """Create `email` as an active admin, or promote/reactivate the existing account. The password
    is only used (and checked against the policy) when the account is new."""
    email = email.strip()
    box = Outbox(outbox, db, jetstream_publisher(nc.jetstream()) if nc is not None else _relay_later)
    async with db.transaction() as s:
        row = (
            await s.execute(select(users).where(func.lower(users.c.email) == email.lower()).with_for_update())
        ).one_or_none()
        outcome: Outcome
        if row is None:
            (policy or PasswordPolicy.from_env()).enforce(password, email)
            pw_hash = await passwords.hash_password(password)
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
            await record_audit(
                s, audit_log, Ctx(request_id=""), f"admin.{outcome}", target_id=row.id, via="cli"
            )
            await _enqueue_announcement(s, box, row, outcome)
    if nc is not None and outcome != "unchanged":
        await box.flush()
        if outcome == "promoted":
            await _put_admin_state(nc, row)
    return AdminResult(row.id, row.email, outcome)


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


async def _put_admin_state(nc: Any, row: UserRow) -> None:
    kv = await ensure_kv(nc.jetstream(), AUTH_STATE_BUCKET)
    try:  # keep the user's cut-off for old tokens; only role and active change
        entry = await kv.get(f"user.{row.id}")
        state = UserState.model_validate_json(entry.value or b"{}")
    except Exception:
        state = UserState()
    state = state.model_copy(update={"active": True, "role": "admin"})
    await kv.put(f"user.{row.id}", state.model_dump_json().encode())


async def _relay_later(subject: str, body: bytes, headers: dict[str, str]) -> None:
    raise RuntimeError("not connected to NATS: the auth service's outbox relay publishes this")
