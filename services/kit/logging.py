"""Structured JSON logs. Every line carries the service name and the current request id.

Secrets never reach a log line: values of keys that look secret are masked, and `SecretStr`
values are rendered by pydantic as '**********'.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SECRET_KEY = re.compile(r"pass|secret|token|authorization|api_key|apikey|cookie|credential", re.I)
# A JWT or an opaque bearer token pasted into a free-text message.
_TOKEN_TEXT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}|(?i:bearer)\s+[\w.~+/=-]{16,}")
# The password in a URL such as nats://user:password@host or postgresql://role:password@host.
_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^\s/:@]*:)[^\s/@]+@", re.I)


def _scrub(text: str) -> str:
    return _URL_PASSWORD.sub(r"\1***@", _TOKEN_TEXT.sub("***", text))


def mask_secrets(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and value not in (None, "", False, True):
        return "***"
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return _scrub(value)
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": _scrub(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            line["request_id"] = rid
        extra = getattr(record, "fields", None)
        if extra:
            line.update(mask_secrets(extra))
        if record.exc_info:
            line["exc"] = _scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("nats", "faststream", "uvicorn.access", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel("WARNING")


def log_fields(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log with structured fields (masked where the key looks secret)."""
    logger.log(level, msg, extra={"fields": fields})
