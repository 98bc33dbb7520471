"""Forgetting what can no longer matter: old revocation keys, ended sessions, expired links, sign-in
challenges and access tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, select

from ..tables import access_tokens, action_tokens, login_challenges, sessions
from .common import AuthDeps, now

ENDED_SESSION_RETENTION = timedelta(days=30)


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
