"""The storage budget: how many bytes each JetStream stream, KV bucket and object store may hold.

`ATRIUM_STORAGE_BUDGET` (default 10GiB; `500MB`, `20GiB`, plain bytes) is what Atrium may store in
JetStream in all. Every stream and bucket gets its own limit out of it (`limits`), created with it and
kept at it, and nats-server reserves each limit against its store: a full documents store refuses the
next upload (HTTP 507), but cannot take the space of the revocation state (`auth_state`), the settings
or the events, whose limits are their own. Streams of events drop their oldest events when full; buckets
and object stores refuse new writes instead (they hold state, nothing may silently disappear). The
embedded nats-server is given a store a little larger than the budget (`server_store_bytes`).

A leaf: only the standard library.
"""

from __future__ import annotations

import os
import re

DEFAULT_BUDGET = "10GiB"
MIN_BUDGET = 64 * 1024**2
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "k": 1024, "m": 1024**2, "g": 1024**3}

MIB = 1024**2

# name → (share of the budget, at least, at most): the fixed small ones first. The documents object store
# gets what is left. Stream names: KV buckets are `KV_<bucket>`, object stores `OBJ_<bucket>`.
ALLOTMENT: dict[str, tuple[float, int, int | None]] = {
    "KV_auth_state": (0.01, 4 * MIB, 64 * MIB),  # revoked sessions, user states: reserved, never starved
    "KV_settings": (0.001, 1 * MIB, 4 * MIB),
    "KV_extract_runs": (0.004, 2 * MIB, 32 * MIB),
    "KV_superseded_runs": (0.002, 1 * MIB, 16 * MIB),
    "AUTH": (0.01, 4 * MIB, 512 * MIB),
    "PERMISSIONS": (0.01, 4 * MIB, 512 * MIB),
    "PROFILE": (0.005, 2 * MIB, 256 * MIB),
    "DOCUMENTS": (0.04, 16 * MIB, 4096 * MIB),
    "OBJ_avatars": (0.04, 8 * MIB, 4096 * MIB),
}
DOCUMENTS_STORE = "OBJ_documents"


def parse_size(text: str) -> int:
    """`10GiB`, `500MB`, `1073741824` → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (write it like 10GiB, 500MB or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def storage_budget(env: dict[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get("ATRIUM_STORAGE_BUDGET") or DEFAULT_BUDGET
    budget = parse_size(raw)
    if budget < MIN_BUDGET:
        raise ValueError(f"ATRIUM_STORAGE_BUDGET={raw} is below the minimum of {MIN_BUDGET // MIB} MiB")
    return budget


def limits(budget: int) -> dict[str, int]:
    """Bytes per stream; together exactly `budget`."""
    out: dict[str, int] = {}
    for name, (share, floor, cap) in ALLOTMENT.items():
        size = max(floor, int(budget * share))
        out[name] = min(size, cap) if cap is not None else size
    out[DOCUMENTS_STORE] = budget - sum(out.values())
    return out


def limit_for(stream: str, env: dict[str, str] | None = None) -> int | None:
    """This stream's limit under the configured budget, or None for a stream Atrium does not budget."""
    return limits(storage_budget(env)).get(stream)


def server_store_bytes(budget: int) -> int:
    """What the embedded nats-server may store: the budget plus room for its own bookkeeping."""
    return budget + max(64 * MIB, budget // 20)
