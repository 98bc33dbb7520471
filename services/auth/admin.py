"""Bootstrapping administrators: `atrium admin create` and the tests' `new_admin` fixture use this.

There are no default credentials; the first admin is made here (idempotently) against the auth
database. When a NATS connection is given, the stack learns of it at once: a new account is
announced with `events.auth.user_registered`, a promotion with `events.auth.user_changed` and the
user's live state in the `auth_state` bucket (so tokens minted before the promotion are refreshed).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update

from contracts import Header
from contracts.auth import (
    AUTH_STATE_BUCKET,
    USER_CHANGED,
    USER_REGISTERED,
    UserChanged,
    UserRegistered,
    UserState,
)
from services.kit import passwords
from services.kit.bus import ensure_kv
from services.kit.db import Database

from .policy import PasswordPolicy
from .tables import audit_log, users


@dataclass
class AdminResult:
    user_id: uuid.UUID
    email: str
    outcome: Literal["created", "promoted", "unchanged"]


async def ensure_admin(
    db: Database, email: str, password: str, *, policy: PasswordPolicy | None = None, nc: Any = None
) -> AdminResult:
    """Create `email` as an active admin, or promote/reactivate the existing account. The password
    is only used (and checked against the policy) when the account is new."""
    email = email.strip()
    async with db.transaction() as s:
        row = (
            await s.execute(select(users).where(func.lower(users.c.email) == email.lower()).with_for_update())
        ).one_or_none()
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
            outcome: Literal["created", "promoted", "unchanged"] = "created"
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
            await s.execute(
                insert(audit_log).values(
                    id=uuid.uuid4(),
                    action=f"admin.{outcome}",
                    actor_id=None,
                    target_id=row.id,
                    details={"via": "cli"},
                )
            )
    if nc is not None and outcome != "unchanged":
        await announce(nc, row, outcome)
    return AdminResult(row.id, row.email, outcome)


async def announce(nc: Any, row: Any, outcome: str) -> None:
    js = nc.jetstream()
    if outcome == "created":
        event = UserRegistered(
            user_id=row.id,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            registered_at=row.created_at,
        )
        await js.publish(
            USER_REGISTERED.subject,
            event.model_dump_json().encode(),
            timeout=10,
            headers={Header.MSG_ID: f"user_registered:{row.id}"},
        )
        return
    kv = await ensure_kv(js, AUTH_STATE_BUCKET)
    try:  # keep the user's cut-off for old tokens; only role and active change
        entry = await kv.get(f"user.{row.id}")
        state = UserState.model_validate_json(entry.value or b"{}")
    except Exception:
        state = UserState()
    state = state.model_copy(update={"active": True, "role": "admin"})
    await kv.put(f"user.{row.id}", state.model_dump_json().encode())
    changed = UserChanged(
        user_id=row.id, role="admin", is_active=True, email=row.email, changed_at=datetime.now(UTC)
    )
    await js.publish(
        USER_CHANGED.subject,
        changed.model_dump_json().encode(),
        timeout=10,
        headers={Header.MSG_ID: f"user_changed:{row.id}:{time.time_ns()}"},
    )
