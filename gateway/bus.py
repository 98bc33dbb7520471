"""The gateway's bus client: one Rpc per HTTP request, with the caller's token and request id."""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Annotated, Any

import nats
from fastapi import Depends, Request
from pydantic import BaseModel

from contracts import AtriumError, ErrorCode, Header, Unavailable
from contracts.auth import LOGIN
from contracts.base import Rpc
from contracts.identity import ENROL_SECOND_FACTOR, PAT_EXCHANGE
from services.kit import client
from services.kit.admission import Admission
from services.kit.config import NatsLogin, nats_servers

from .pats import exchanger

# Sign-ins sent to the auth service at once. Each costs a core ≈ 75 ms of hashing there, so a burst beyond what
# it hashes in time waited in its queue until the gateway's timeout (504); queued here instead, one that
# would wait more than SIGN_IN_WAIT_BUDGET_S is answered 503 + Retry-After at once.
SIGN_INS_AT_ONCE = int(os.environ.get("ATRIUM_GATEWAY_SIGNINS_AT_ONCE") or 4)
SIGN_IN_WAIT_BUDGET_S = 3.0


class BusClient:
    def __init__(self, timeout_s: float):
        self.nc: nats.NATS | None = None
        self.timeout_s = timeout_s
        # Subjects whose requests are admitted (kit/admission.py) before they are sent.
        self.admissions: dict[str, Admission] = {
            LOGIN.subject: Admission(SIGN_INS_AT_ONCE, SIGN_IN_WAIT_BUDGET_S, "sign-ins", seconds_each=0.3)
        }

    async def connect(self, url: str, login: NatsLogin | None = None) -> None:
        async def quiet(_e: Exception) -> None:  # reconnects are reported by /health, not as tracebacks
            return None

        while True:
            self.nc = await nats.connect(
                nats_servers(url),
                name="atrium-gateway",
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=3,
                error_cb=quiet,
                allow_reconnect=True,
                **(login or NatsLogin()).connect_options(),
            )
            if self.nc.is_connected:
                return
            # nats-py 2.16 returns before the handshake finished when the server's first PING overtakes its
            # PONG (a slow server: nats-server#1174) and would never count as connected: connect anew.
            await self.nc.close()
            await asyncio.sleep(1)

    async def close(self) -> None:
        if self.nc:
            await self.nc.drain()

    @property
    def connected(self) -> bool:
        return bool(self.nc and self.nc.is_connected)


class CallContext:
    """Bus access bound to one HTTP request: forwards request id, client ip, user agent and token."""

    def __init__(self, bus: BusClient, request: Request):
        self.bus = bus
        self.request = request

    @property
    def request_id(self) -> str:
        return self.request.state.request_id

    def headers(self) -> dict[str, str]:
        return {
            Header.CLIENT_IP: self.request.state.client_ip,
            Header.USER_AGENT: (self.request.headers.get("user-agent") or "")[:400],
        }

    async def __call__(
        self,
        desc: Rpc[Any, Any],
        payload: BaseModel | dict[str, Any] | None = None,
        *,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        if not self.bus.connected or self.bus.nc is None:
            raise Unavailable("The message bus is not reachable; Atrium is starting or NATS is down.")
        admission = self.bus.admissions.get(desc.subject)
        if admission is not None:
            async with admission.turn():
                return await self._call(desc, payload, token=token, timeout=timeout)
        return await self._call(desc, payload, token=token, timeout=timeout)

    async def _call(
        self,
        desc: Rpc[Any, Any],
        payload: BaseModel | dict[str, Any] | None,
        *,
        token: str | None,
        timeout: float | None,
    ) -> Any:
        assert self.bus.nc is not None
        send = functools.partial(
            client.call,
            self.bus.nc,
            desc,
            payload,
            request_id=self.request_id,
            headers=self.headers(),
            timeout=timeout or self.bus.timeout_s,
        )
        try:
            return await send(token=token)
        except AtriumError as exc:
            personal = getattr(self.request.state, "personal_token", None)
            if not _stale_exchange(exc) or not personal or not token or desc is PAT_EXCHANGE:
                raise
        # The access token a personal access token was exchanged for is refused (e.g. the account's tokens
        # were cut off after the exchange, or it says the account has no second factor and one was set up
        # since): exchange again, once; a revoked or expired token fails there.
        pats = exchanger(self.request)
        pats.forget(personal)
        fresh = await pats.access_token(self, personal, fresh=True)
        return await send(token=fresh)


def _stale_exchange(exc: AtriumError) -> bool:
    """Whether a service's refusal may come from what the exchanged access token says, not the PAT itself."""
    if exc.code == ErrorCode.UNAUTHENTICATED:
        return True
    return (
        exc.code == ErrorCode.FORBIDDEN
        and isinstance(exc.details, dict)
        and (exc.details.get("reason") == ENROL_SECOND_FACTOR)
    )


async def get_call(request: Request) -> CallContext:  # async: no thread-pool hop (see transport.py)
    return CallContext(request.app.state.bus, request)


Call = Annotated[CallContext, Depends(get_call)]
