"""Calls from the auth service to a server outside Atrium (an OpenID provider, an external auth server):
a timeout on every call, retries with exponential backoff for what may pass (no connection, a timeout,
429 or 5xx), and a circuit breaker — after `threshold` consecutive failures the server is not called
for `cool_off_s`, and callers get `unavailable` at once instead of waiting out timeouts. Errors name the
server and what happened, so a person can tell "down" from "slow" from "refused".
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts import Timeout, Unavailable
from services.kit.logging import log_fields

log = logging.getLogger("atrium.auth.upstream")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Upstream:
    name: str  # what the errors call it: "the identity provider keycloak"
    timeout_s: float = 5.0
    retries: int = 2  # after the first try
    backoff_s: float = 0.2  # 0.2, 0.4, 0.8 … (with jitter)
    threshold: int = 5  # consecutive failures that open the circuit
    cool_off_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    failures: int = 0
    open_until: float = 0.0
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport)
        return self._client

    @property
    def circuit_open(self) -> bool:
        return time.monotonic() < self.open_until

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The server's answer (any status it meant: 2xx or a 4xx refusal); raises `Unavailable` when it is
        down or keeps failing, `Timeout` when it stays too slow, without calling it while the circuit is open."""
        if self.circuit_open:
            left = max(1, round(self.open_until - time.monotonic()))
            raise Unavailable(
                f"{self.name} failed repeatedly; Atrium stops calling it for {left} s. Try again later.",
                {"reason": "circuit_open", "retry_after_s": left},
            )
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                error = exc
                continue
            except httpx.HTTPError as exc:
                error = exc
                continue
            if response.status_code in RETRY_STATUSES:
                error = httpx.HTTPStatusError(
                    f"status {response.status_code}", request=response.request, response=response
                )
                continue
            self.failures = 0
            return response
        self._failed(error)
        if isinstance(error, httpx.TimeoutException):
            raise Timeout(
                f"{self.name} did not answer within {self.timeout_s:g} s ({self.retries + 1} tries); it is slow or "
                "overloaded. Try again later.",
                {"reason": "upstream_timeout"},
            )
        what = (
            f"answered {error.response.status_code}"
            if isinstance(error, httpx.HTTPStatusError)
            else f"cannot be reached ({type(error).__name__})"
        )
        raise Unavailable(f"{self.name} {what}; try again later.", {"reason": "upstream_down"})

    def _failed(self, error: Exception | None) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = time.monotonic() + self.cool_off_s
            self.failures = 0
            log_fields(log, logging.WARNING, "circuit opened", upstream=self.name, cool_off_s=self.cool_off_s)
        log_fields(log, logging.WARNING, "upstream call failed", upstream=self.name, error=repr(error))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


EXTERNAL_SERVER = "the external sign-in server"


class ExternalAuth:
    """The current settings' `Upstream` (rebuilt when they change, which also resets its circuit)."""

    def __init__(self) -> None:
        self._upstream: Upstream | None = None
        self._built_for: tuple[str, float, float] | None = None

    def upstream(self, stored: dict[str, Any]) -> Upstream:
        key = (
            stored.get("token_url", ""),
            float(stored.get("timeout_s", 5.0)),
            float(stored.get("circuit_cool_off_s", 30.0)),
        )
        if self._upstream is None or self._built_for != key:
            self._upstream = Upstream(EXTERNAL_SERVER, timeout_s=key[1], cool_off_s=key[2])
            self._built_for = key
        return self._upstream
