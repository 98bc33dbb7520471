"""What a handler knows about the message besides its body: `Ctx`, the second argument of every handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from contracts import Header, Unauthenticated

from .security import Actor


@dataclass
class Ctx:
    request_id: str
    actor: Actor | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    subject: str = ""
    stream_seq: int = 0  # JetStream events: the message's stream sequence (same on every redelivery)
    # JetStream events: tells the server the handler is still working, so `ack_wait` does not expire
    heartbeat: Callable[[], Awaitable[None]] | None = None

    @property
    def client_ip(self) -> str:
        return self.headers.get(Header.CLIENT_IP, "")

    @property
    def user_agent(self) -> str:
        return self.headers.get(Header.USER_AGENT, "")

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise Unauthenticated("Sign in first: this request needs a valid access token.")
        return self.actor
