"""The auth service's writes to the `auth_state` KV bucket that every verifier follows.

Each write is also applied to this process's own verifier at once, so the auth service refuses
a revoked token on the very next request; other services learn it from their KV watch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from contracts.auth import Role, UserState
from services.kit.security import TokenVerifier


class AuthState:
    def __init__(self, verifier: TokenVerifier):
        self.verifier = verifier

    @property
    def kv(self) -> Any:
        return self.verifier.kv

    def current(self, user_id: UUID) -> UserState | None:
        return self.verifier.users.get(str(user_id))

    async def revoke_sessions(self, session_ids: Iterable[UUID]) -> None:
        for sid in session_ids:
            key, value = f"session.{sid}", b"revoked"
            await self.kv.put(key, value)
            self.verifier.apply(key, value)

    async def forget_sessions(self, session_ids: Iterable[UUID]) -> None:
        """Drop revocation keys nobody needs any more (every token of those sessions has expired)."""
        for sid in session_ids:
            key = f"session.{sid}"
            await self.kv.delete(key)
            self.verifier.apply(key, None, "DEL")

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
        if state == old and self.current(user_id) is not None:
            return
        key, value = f"user.{user_id}", state.model_dump_json().encode()
        await self.kv.put(key, value)
        self.verifier.apply(key, value)

    async def sync_user(self, user_id: UUID, *, role: Role, active: bool) -> None:
        """Correct a recorded state that disagrees with the database (e.g. after `atrium admin create`
        promoted an account while the stack was down). Nothing is written when there is nothing recorded."""
        known = self.current(user_id)
        if known is not None and (known.role != role or known.active != active):
            await self.put_user(user_id, role=role, active=active)
