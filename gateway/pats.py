"""Personal access tokens at the gateway: `Authorization: Bearer atp_…` is exchanged with the auth service
(`auth.pat.exchange`) for a short-lived access JWT carrying the token's scopes, which is what the services
verify. The JWT is cached per token for at most `CACHE_S` seconds, so a busy script costs the auth service
one exchange a minute, and its last use is known to the minute. An admin-scoped token is exchanged for
every request (each use is audited). When a service refuses a cached JWT (the user's tokens were cut off,
the role changed), the exchange is done again once; a revoked or expired token then fails at the exchange.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Protocol

from fastapi import Request

from contracts.base import Rpc
from contracts.identity import PAT_EXCHANGE, PAT_PREFIX, PatAccess

CACHE_S = 60.0
MAX_ENTRIES = 10_000


def is_personal_token(token: str) -> bool:
    return token.startswith(PAT_PREFIX)


class BusCall(Protocol):
    """The gateway's bus call bound to a request (`gateway.bus.CallContext`)."""

    request: Request

    async def __call__(self, desc: Rpc[Any, Any], payload: Any = None) -> Any: ...


class PatExchanger:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, float]] = {}  # sha256(token) -> (access JWT, valid until)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    async def access_token(self, call: BusCall, token: str, *, fresh: bool = False) -> str:
        key = self._key(token)
        cached = self._cache.get(key)
        if cached and not fresh and cached[1] > time.monotonic():
            return cached[0]
        request = call.request
        access: PatAccess = await call(
            PAT_EXCHANGE, {"token": token, "purpose": f"{request.method} {request.url.path}"[:300]}
        )
        if access.audited:
            self._cache.pop(key, None)
        else:
            if len(self._cache) >= MAX_ENTRIES:
                self._prune()
            self._cache[key] = (access.access_token, time.monotonic() + min(CACHE_S, access.expires_in - 5))
        return access.access_token

    def forget(self, token: str) -> None:
        self._cache.pop(self._key(token), None)

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, until) in self._cache.items() if until <= now]:
            del self._cache[key]
        while len(self._cache) >= MAX_ENTRIES:
            self._cache.pop(next(iter(self._cache)))


def exchanger(request: Request) -> PatExchanger:
    found: PatExchanger | None = getattr(request.app.state, "pats", None)
    if found is None:
        found = request.app.state.pats = PatExchanger()
    return found
