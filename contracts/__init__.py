"""Atrium's bus contracts: the only package every part imports.

Importing this package imports every domain module, so `REGISTRY` holds every subject.
"""

import importlib
import pkgutil

from . import auth, documents, streams  # noqa: F401  (registration side effects)
from .base import (
    HTTP_STATUS,
    REGISTRY,
    AtriumError,
    Conflict,
    Contract,
    Empty,
    Envelope,
    ErrorBody,
    ErrorCode,
    Event,
    Forbidden,
    Header,
    HealthReply,
    InsufficientStorage,
    Internal,
    Invalid,
    NotFound,
    Progress,
    RateLimited,
    Rpc,
    Stream,
    Timeout,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Unsupported,
    WireSecret,
    health_rpc,
)

__all__ = [
    "HTTP_STATUS",
    "REGISTRY",
    "AtriumError",
    "Conflict",
    "Contract",
    "Empty",
    "Envelope",
    "ErrorBody",
    "ErrorCode",
    "Event",
    "Forbidden",
    "Header",
    "HealthReply",
    "InsufficientStorage",
    "Internal",
    "Invalid",
    "NotFound",
    "Progress",
    "RateLimited",
    "Rpc",
    "Stream",
    "Timeout",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
    "WireSecret",
    "health_rpc",
]


# Every domain module registers its subjects on import; load them all so REGISTRY is complete.
for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
