"""Atrium's bus contracts: the only package every part imports.

Importing this package imports every domain module, so `REGISTRY` holds every subject.
"""

from . import auth, streams  # noqa: F401  (registration side effects)
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
    "HTTP_STATUS", "REGISTRY", "AtriumError", "Conflict", "Contract", "Empty", "Envelope", "ErrorBody",
    "ErrorCode", "Event", "Forbidden", "Header", "HealthReply", "Internal", "Invalid", "NotFound",
    "Progress", "RateLimited", "Rpc", "Stream", "Timeout", "TooLarge", "Unauthenticated", "Unavailable",
    "Unsupported", "WireSecret", "health_rpc",
]
