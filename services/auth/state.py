"""The auth service's writes to the `auth_state` KV bucket that every verifier follows.

The database is the source of truth; the bucket is how every service learns it. A write is applied to
this process's own verifier at once (the auth service refuses a revoked token on the very next request),
then stored. A write the bucket refuses (full, unreachable) never fails the request that caused it — a
logout, a password reset, a deactivation still takes effect: the entry waits in `pending`, is pushed to
every verifier over core NATS (`progress.auth.state`) so they apply it anyway, and is written again by
the `auth-state` loop until the bucket takes it. After a crash, that loop finds what the bucket is missing
in the database (`handlers/housekeeping.reconcile_state`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

from contracts.auth import AuthStateEntry, Role, UserState
from contracts.identity import SecurityPolicy
from services.kit.logging import log_fields
from services.kit.security import POLICY_STATE_KEY, TokenVerifier

log = logging.getLogger("atrium.auth.state")

WRITE_TIMEOUT_S = 2.0  # a write that takes longer is left to the retry loop; the request goes on
Push = Callable[[AuthStateEntry], Awaitable[None]]


class AuthState:
    def __init__(self, verifier: TokenVerifier, push: Push | None = None):
        self.verifier = verifier
        self.push = push
        self.pending: dict[str, bytes | None] = {}  # key → value not stored yet (None: a deletion)
        self.reconciled_at = 0.0  # monotonic time of the last comparison with the database

    @property
    def kv(self) -> Any:
        return self.verifier.kv

    def current(self, user_id: UUID) -> UserState | None:
        return self.verifier.users.get(str(user_id))

    async def _store(self, key: str, value: bytes | None) -> None:
        if value is None:
            await asyncio.wait_for(self.kv.delete(key), WRITE_TIMEOUT_S)
        else:
            await asyncio.wait_for(self.kv.put(key, value), WRITE_TIMEOUT_S)

    async def _write(self, key: str, value: bytes | None) -> None:
        """Apply here at once, then store; what cannot be stored now waits in `pending`. Never raises."""
        self.verifier.apply(key, value, "DEL" if value is None else None)
        if (
            not self.pending
        ):  # while earlier entries wait, later ones queue behind them (one write fails fast)
            try:
                await self._store(key, value)
                return
            except Exception as exc:
                log_fields(
                    log, logging.WARNING, "auth_state write failed; retrying", key=key, error=repr(exc)
                )
        self.pending[key] = value
        await self._push(key, value)

    async def _push(self, key: str, value: bytes | None) -> None:
        if self.push is None:
            return
        try:
            await self.push(AuthStateEntry(key=key, value=value.decode() if value is not None else None))
        except Exception as exc:  # the loop pushes again
            log_fields(log, logging.WARNING, "auth_state push failed", key=key, error=repr(exc))

    async def flush(self) -> int:
        """Store what is pending, oldest first; push what still cannot be stored. Returns what is left."""
        for key, value in list(self.pending.items()):
            try:
                await self._store(key, value)
            except Exception:
                for k, v in self.pending.items():  # the verifiers that started meanwhile learn it too
                    await self._push(k, v)
                return len(self.pending)
            if self.pending.get(key, b"?") == value:  # not overwritten while the write ran
                del self.pending[key]
        return len(self.pending)

    async def revoke_sessions(self, session_ids: Iterable[UUID]) -> None:
        for sid in session_ids:
            await self._write(f"session.{sid}", b"revoked")

    async def forget_sessions(self, session_ids: Iterable[UUID]) -> None:
        """Drop revocation keys nobody needs any more (every token of those sessions has expired)."""
        for sid in session_ids:
            await self._write(f"session.{sid}", None)

    async def put_user(
        self, user_id: UUID, *, role: Role, active: bool, cut_off_tokens: bool = False
    ) -> None:
        """Record the user's live role and active flag; `cut_off_tokens` refuses every access token
        issued in an earlier second (the same second is covered by session revocation)."""
        old = self.current(user_id) or UserState()
        state = UserState(
            role=role,
            active=active,
            tokens_valid_after=float(int(time.time())) if cut_off_tokens else old.tokens_valid_after,
        )
        key = f"user.{user_id}"
        if state == old and self.current(user_id) is not None and key not in self.pending:
            return
        await self._write(key, state.model_dump_json().encode())

    async def put_policy(self, policy: SecurityPolicy) -> None:
        """Record the security policy every verifier enforces (who must have a second factor)."""
        if policy != self.verifier.policy or POLICY_STATE_KEY in self.pending:
            await self._write(POLICY_STATE_KEY, policy.model_dump_json().encode())

    async def sync_user(self, user_id: UUID, *, role: Role, active: bool) -> None:
        """Correct a recorded state that disagrees with the database (e.g. after `atrium admin create`
        promoted an account while the stack was down). Nothing is written when there is nothing recorded."""
        known = self.current(user_id)
        if known is not None and (known.role != role or known.active != active):
            await self.put_user(user_id, role=role, active=active)
