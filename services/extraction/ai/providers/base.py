"""The one provider interface, and what every provider shares: errors, usage, retries, concurrency.

A provider answers `analyze(text, instructions, schema) -> (fields dict, Usage)`: the dict is the
model's raw answer (validated by the caller against `ExtractedFields`), the usage its tokens and
latency. Transport failures raise `ProviderError`; an answer that is not JSON raises
`MalformedAnswer` (the caller treats it like a schema violation and asks once more).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Tokens are estimated at ~4 characters; a document is cut to this many characters before it is sent.
DEFAULT_BUDGET_CHARS = 48_000
VISION_MAX_TOKENS = 4096  # a dense page is 600-1,000 words
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    model: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    timeout_s: float = 60.0
    max_attempts: int = 3  # per call, for 429 / 5xx / connection errors
    backoff_s: float = 0.5
    concurrency: int = 2
    # Loopback and private hosts (Ollama, LM Studio) only when an administrator allows them (network.py).
    allow_local_servers: bool = False


@dataclass
class Usage:
    model: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float = 0.0
    attempts: int = 1

    def add(self, other: Usage) -> Usage:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            model=other.model or self.model,
            tokens_in=plus(self.tokens_in, other.tokens_in),
            tokens_out=plus(self.tokens_out, other.tokens_out),
            latency_ms=self.latency_ms + other.latency_ms,
            attempts=self.attempts + other.attempts,
        )


# Providers echo a rejected key in their error text ("Incorrect API key provided: sk-…"); such text is
# shown to admins and stored on the task, so anything shaped like a key is masked first.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|key|api|token)[-_][\w*.-]{6,}|\b[A-Za-z0-9_]{24,}\b", re.I)


def mask_keys(text: str) -> str:
    return _KEY_LIKE.sub("***", text)


class ProviderError(Exception):
    """The provider could not answer. `retryable`: 429, 5xx, connection trouble; `timeout`: it took too long.
    `summary`: the message without anything the remote server sent (what a settings test may show)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        timeout: bool = False,
        retry_after_s: float | None = None,
        status: int | None = None,
        summary: str | None = None,
        mask: bool = True,  # False only for a message made here of names and addresses, never a key
    ):
        message = mask_keys(message) if mask else message
        super().__init__(message)
        self.message = message
        self.summary = summary if summary is not None else message
        self.retryable = retryable
        self.timeout = timeout
        self.retry_after_s = retry_after_s
        self.status = status


class MalformedAnswer(Exception):
    """The model answered, but not with a JSON object."""


class Provider(Protocol):
    name: str
    model: str
    budget_chars: int

    async def analyze(
        self, text: str, instructions: str, schema: dict[str, Any]
    ) -> tuple[dict[str, Any], Usage]: ...

    async def ping(self) -> str:
        """A tiny request; returns the model name the provider reports."""
        ...

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        ...


class VisionProvider(Provider, Protocol):
    """A provider whose models read images: vision OCR (not the builtin one)."""

    async def read_image(self, jpeg: bytes, instructions: str) -> tuple[str, Usage]:
        """The text `instructions` ask for from a JPEG page image, with the usage."""
        ...


def retry_after_seconds(headers: Any) -> float | None:
    """`Retry-After` (seconds, or an HTTP date) or `retry-after-ms`, if the provider sent one."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def status_error(provider: str, status: int, detail: str, headers: Any = None) -> ProviderError:
    """Plain words for an HTTP error from a provider (the server's own words after them, not in `summary`)."""
    detail = " ".join(str(detail).split())[:300]
    if status == 401 or status == 403:
        text = f"{provider} refused the credentials (HTTP {status}): check the API key."
    elif status == 404:
        text = (
            f"{provider} does not know this model or endpoint (HTTP 404): check the model name and base URL."
        )
    elif status == 429:
        text = f"{provider} is rate limiting requests (HTTP 429)."
    elif status >= 500:
        text = f"{provider} had a server error (HTTP {status})."
    else:
        text = f"{provider} rejected the request (HTTP {status})."
    return ProviderError(
        f"{text} {detail}".strip(),
        retryable=status == 429 or status >= 500,
        retry_after_s=retry_after_seconds(headers),
        status=status,
        summary=text,
    )


async def with_retries(
    config: ProviderConfig,
    attempt: Callable[[], Awaitable[T]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[T, int]:
    """Run `attempt`, retrying retryable `ProviderError`s with exponential backoff and jitter,
    never sooner than the provider's Retry-After. Returns the result and the number of attempts."""
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt(), tries
        except ProviderError as err:
            if not err.retryable or tries >= config.max_attempts:
                raise
            delay = config.backoff_s * (2 ** (tries - 1)) * (1 + random.random() / 4)
            if err.retry_after_s is not None:
                delay = max(delay, min(err.retry_after_s, MAX_RETRY_AFTER_S))
            await sleep(delay)


# One semaphore per provider endpoint in this process: a worker never floods one model server.
_LIMITS: dict[tuple[str, str], asyncio.Semaphore] = {}


def concurrency_limit(config: ProviderConfig) -> asyncio.Semaphore:
    key = (config.name, config.base_url)
    sem = _LIMITS.get(key)
    if sem is None:
        sem = _LIMITS[key] = asyncio.Semaphore(config.concurrency)
    return sem


def system_prompt(instructions: str) -> str:
    base = (
        "You read one document (text extracted from a PDF, pages marked '--- page N ---') and record its "
        "fields. Use only what the text says; leave a field null rather than guess. Dates as YYYY-MM-DD, "
        "amounts as plain numbers without thousands separators, currency as an ISO 4217 code, "
        "document_type one of the listed values, summary: two or three sentences in the document's "
        "language, suggested_categories: up to five short nouns."
    )
    return f"{base}\n\n{instructions.strip()}" if instructions.strip() else base
