"""Forgetting what can no longer matter (old revocation keys, ended sessions, expired links, sign-in
challenges and access tokens), and keeping the `auth_state` bucket in step with the database."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, select

from ..tables import access_tokens, action_tokens, audit_log, login_challenges, sessions, users
from .common import AuthDeps, now
from .factors import security_policy

ENDED_SESSION_RETENTION = timedelta(days=30)
RECONCILE_EVERY_S = 60.0
# Audit actions (written in the transaction of the change) after which `auth_state` must show something.
ENDS_SESSIONS = ("session.ended", "admin.taken_over", "pat.revoked")  # a PAT's id is its tokens' sid
CHANGES_USERS = (
    "user.deleted",
    "user.deactivated",
    "user.activated",
    "user.role_changed",
    "admin.promoted",
    "admin.taken_over",
)


async def housekeeping(deps: AuthDeps) -> int:
    """Forget what can no longer matter; returns how many revocation keys were dropped.

    A revoked session's `session.<sid>` key can go once every access token of that session has
    expired (they were all issued before the revocation), and sessions that ended or expired a month
    ago go with their rotation history. Safe to run from several replicas at once.
    """
    at = now()
    safe_before = at - timedelta(seconds=deps.config.access_ttl_s + 120)
    revoked = [uuid.UUID(sid) for sid in list(deps.state.verifier.revoked_sessions) if _is_uuid(sid)]
    async with deps.db.transaction() as s:
        still_needed: set[uuid.UUID] = set()
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
            # A personal access token's id is the session id of the access tokens it was exchanged for.
            still_needed |= set(
                (
                    await s.execute(
                        select(access_tokens.c.id).where(
                            access_tokens.c.id.in_(revoked), access_tokens.c.revoked_at >= safe_before
                        )
                    )
                ).scalars()
            )
        old = at - ENDED_SESSION_RETENTION
        await s.execute(delete(sessions).where(or_(sessions.c.revoked_at < old, sessions.c.expires_at < old)))
        await s.execute(delete(action_tokens).where(action_tokens.c.expires_at < old))
        await s.execute(
            delete(login_challenges).where(login_challenges.c.expires_at < at - timedelta(hours=1))
        )
        await s.execute(
            delete(access_tokens).where(
                or_(access_tokens.c.revoked_at < old, access_tokens.c.expires_at < old)
            )
        )
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


async def sync_state(deps: AuthDeps) -> int:
    """The `auth-state` loop: store what the bucket refused before, and now and then (and first at start)
    compare the bucket with the database. Returns how many entries still wait."""
    left = await deps.state.flush()
    if time.monotonic() - deps.state.reconciled_at >= RECONCILE_EVERY_S:
        await reconcile_state(deps)
        deps.state.reconciled_at = time.monotonic()
        left = len(deps.state.pending)
    return left


async def reconcile_state(deps: AuthDeps) -> int:
    """Write what the database says `auth_state` must hold and the bucket (as this process's verifier
    mirrors it) lacks: sessions ended, and accounts changed or deleted, within an access token's lifetime
    (older tokens have expired anyway). Covers a write lost with a crashed process, and `atrium admin`
    run while the stack was down. Returns how many entries were written."""
    verifier = deps.state.verifier
    since = now() - timedelta(seconds=deps.config.access_ttl_s + 120)
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(audit_log.c.action, audit_log.c.target_id, audit_log.c.details).where(
                    audit_log.c.at >= since, audit_log.c.action.in_(ENDS_SESSIONS + CHANGES_USERS)
                )
            )
        ).all()
        changed = {r.target_id for r in rows if r.action in CHANGES_USERS and r.target_id is not None}
        live = {
            u.id: u
            for u in (
                await s.execute(
                    select(users.c.id, users.c.role, users.c.is_active).where(users.c.id.in_(changed))
                )
            ).all()
        }
    written = 0
    for r in rows:
        if r.action in ENDS_SESSIONS:
            missing = [
                uuid.UUID(sid)
                for sid in (r.details or {}).get("sessions", [])
                if sid not in verifier.revoked_sessions and f"session.{sid}" not in deps.state.pending
            ]
            await deps.state.revoke_sessions(missing)
            written += len(missing)
    for user_id in changed:
        known = verifier.users.get(str(user_id))
        row = live.get(user_id)
        if row is None:  # deleted: every token of theirs is refused
            if known is None or known.active:
                await deps.state.put_user(user_id, role="user", active=False, cut_off_tokens=True)
                written += 1
        elif known is None or (known.role, known.active) != (row.role, row.is_active):
            await deps.state.put_user(user_id, role=row.role, active=row.is_active)
            written += 1
    async with deps.db.session() as s:
        policy = await security_policy(s)
    if policy != verifier.policy:  # e.g. set while the bucket was away and this process restarted
        await deps.state.put_policy(policy)
        written += 1
    return written
