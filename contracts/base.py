"""The bus vocabulary: subject descriptors, the reply envelope, error codes and header names.

Every subject in Atrium is declared exactly once, as an `Rpc` or an `Event` (or a `Progress`
pattern), in one of the domain modules of this package. Services subscribe, the gateway
requests and the CLI publishes through these descriptors; no subject string lives elsewhere
(tests/unit/test_contracts.py enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, SecretStr, StringConstraints

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)
Msg = TypeVar("Msg", bound=BaseModel)


class Header:
    """Header names carried by every bus message."""

    REQUEST_ID = "x-request-id"
    AUTHORIZATION = "authorization"
    TRACEPARENT = "traceparent"
    CLIENT_IP = "x-client-ip"
    USER_AGENT = "x-user-agent"
    # When the caller stops waiting for the reply (Unix time, seconds): a request still queued then is dropped.
    DEADLINE = "x-deadline"
    # When the caller sent the request (Unix time, seconds): how long it waited before its handler took it.
    SENT_AT = "x-sent-at"
    MSG_ID = "Nats-Msg-Id"


class ErrorCode(StrEnum):
    INVALID = "invalid"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    INTERNAL = "internal"
    INSUFFICIENT_STORAGE = "insufficient_storage"


# One HTTP status per code; the gateway uses nothing else to choose a status.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID: 422,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INTERNAL: 500,
    ErrorCode.INSUFFICIENT_STORAGE: 507,  # the storage budget is used up (services/kit/storage.py)
}


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: Any = None


class Envelope(BaseModel):
    """What every Rpc answers: `{"ok": true, "data": …}` or `{"ok": false, "error": …}`."""

    ok: bool
    data: Any = None
    error: ErrorBody | None = None


class AtriumError(Exception):
    """An error that travels: raised by a handler, sent as an error envelope, raised again by the caller."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, details: Any = None, *, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]

    def to_body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, details=self.details)

    @classmethod
    def from_body(cls, body: ErrorBody) -> AtriumError:
        sub = _BY_CODE.get(body.code, AtriumError)
        err = sub(body.message, body.details)
        err.code = body.code  # type: ignore[misc]
        return err

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value}: {self.message})"


class Invalid(AtriumError):
    code = ErrorCode.INVALID


class Unauthenticated(AtriumError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(AtriumError):
    code = ErrorCode.FORBIDDEN


class NotFound(AtriumError):
    code = ErrorCode.NOT_FOUND


class Conflict(AtriumError):
    code = ErrorCode.CONFLICT


class TooLarge(AtriumError):
    code = ErrorCode.TOO_LARGE


class Unsupported(AtriumError):
    code = ErrorCode.UNSUPPORTED


class RateLimited(AtriumError):
    code = ErrorCode.RATE_LIMITED


class Unavailable(AtriumError):
    code = ErrorCode.UNAVAILABLE


class Timeout(AtriumError):
    code = ErrorCode.TIMEOUT


class Internal(AtriumError):
    code = ErrorCode.INTERNAL


class InsufficientStorage(AtriumError):
    code = ErrorCode.INSUFFICIENT_STORAGE


_BY_CODE: dict[ErrorCode, type[AtriumError]] = {
    c.code: c
    for c in (
        Invalid,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        TooLarge,
        Unsupported,
        RateLimited,
        Unavailable,
        Timeout,
        Internal,
        InsufficientStorage,
    )
}


# A secret travels in clear inside the (authenticated) bus message but never shows in a repr or log.
WireSecret = Annotated[
    SecretStr, PlainSerializer(lambda v: v.get_secret_value(), return_type=str, when_used="json")
]


# Text a client sends: PostgreSQL cannot store the NUL character, so no field takes it (the pattern says so).
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
# A URL the services will connect to: no control characters (an HTTP client refuses them as it connects).
UrlText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
# Money as the services store it (NUMERIC(18, 2)): fewer than 17 digits before the point.
Amount = Annotated[Decimal, Field(gt=-(10**16), lt=10**16)]


class Contract(BaseModel):
    """Base of every message model: unknown fields are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Empty(Contract):
    pass


class HealthReply(Contract):
    service: str
    status: Literal["ok", "degraded"] = "ok"
    version: str = ""
    uptime_s: float = 0.0
    checks: dict[str, str] = Field(default_factory=dict)


# Who may call an Rpc. The service verifies this itself, whatever the gateway did.
Access = Literal["public", "user", "admin", "service"]
# What an Rpc does, which is what a scoped token (a personal access token) may be allowed: `read` changes
# nothing, `write` changes the caller's data, `account` manages the caller's own sign-in (password, address,
# sessions, second factors, tokens) and is never open to a personal access token. Unless declared, it
# follows from the verb (`READ_VERBS` read, anything else write).
Effect = Literal["read", "write", "account"]
READ_VERBS = frozenset(
    {
        "get",
        "list",
        "me",
        "counts",
        "download",
        "preview",
        "stats",
        "mine",
        "check",
        "jwks",
        "get_user",
        "status",
        "health",
    }
)


@dataclass(frozen=True)
class Rpc(Generic[Req, Rep]):
    subject: str
    request: type[Req]
    reply: type[Rep]
    access: Access = "user"
    service: str = ""  # the owning service; defaults to the subject's first token
    summary: str = ""
    effect: Effect | None = None  # None: from the verb (see `effect_of`)

    def __post_init__(self) -> None:
        if not self.service:
            object.__setattr__(self, "service", self.subject.split(".", 1)[0])
        REGISTRY.add(self)


def effect_of(desc: Rpc[Any, Any]) -> Effect:
    """What `desc` does: as declared, else `read` for a verb in `READ_VERBS`, else `write`."""
    if desc.effect is not None:
        return desc.effect
    return "read" if desc.subject.rsplit(".", 1)[-1] in READ_VERBS else "write"


@dataclass(frozen=True)
class Event(Generic[Msg]):
    subject: str
    model: type[Msg]
    stream: str
    summary: str = ""

    def __post_init__(self) -> None:
        REGISTRY.add(self)


@dataclass(frozen=True)
class Progress(Generic[Msg]):
    """A fire-and-forget core-NATS subject family, e.g. `progress.docs.<owner>.<doc>`."""

    prefix: str
    model: type[Msg]
    tokens: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self) -> None:
        REGISTRY.add(self)

    def subject(self, *values: str) -> str:
        if len(values) != len(self.tokens):
            raise ValueError(f"{self.prefix} needs {self.tokens}")
        for v in values:
            if not v or any(c in v for c in ".*> \t"):
                raise ValueError(f"invalid subject token {v!r}")
        return ".".join((self.prefix, *values))

    def wildcard(self, *values: str) -> str:
        rest = len(self.tokens) - len(values)
        return ".".join((self.prefix, *values, *(["*"] * rest)))


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a trailing `>` one or more."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@dataclass(frozen=True)
class Stream:
    """A JetStream stream and the subjects it stores."""

    name: str
    subjects: tuple[str, ...]
    max_age_days: int = 365
    duplicate_window_s: int = 120
    summary: str = ""

    def __post_init__(self) -> None:
        REGISTRY.add(self)

    def stores(self, subject: str) -> bool:
        return any(subject_matches(p, subject) for p in self.subjects)


@dataclass
class Registry:
    rpcs: dict[str, Rpc[Any, Any]] = field(default_factory=dict)
    events: dict[str, Event[Any]] = field(default_factory=dict)
    progress: dict[str, Progress[Any]] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)

    def add(self, item: Any) -> None:
        table: dict[str, Any]
        if isinstance(item, Rpc):
            key, table = item.subject, self.rpcs
        elif isinstance(item, Event):
            key, table = item.subject, self.events
        elif isinstance(item, Progress):
            key, table = item.prefix, self.progress
        else:
            key, table = item.name, self.streams
        if key in self.all_subjects() and table.get(key) is not item and not isinstance(item, Stream):
            raise ValueError(f"subject {key} declared twice")
        table[key] = item

    def all_subjects(self) -> set[str]:
        return set(self.rpcs) | set(self.events) | set(self.progress)

    def find(self, subject: str) -> Rpc[Any, Any] | Event[Any] | None:
        return self.rpcs.get(subject) or self.events.get(subject)


REGISTRY = Registry()


def health_rpc(service: str) -> Rpc[Empty, HealthReply]:
    """`<service>.health`, declared once per service (asking again returns the same descriptor)."""
    existing = REGISTRY.rpcs.get(f"{service}.health")
    if existing is not None:
        return existing
    return Rpc(f"{service}.health", Empty, HealthReply, access="public", summary=f"Liveness of {service}")
