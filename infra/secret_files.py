"""Secret files of a stack: written owner-only (0600, in a 0700 directory), created once and kept.

A leaf: the embedded servers, the NATS users and the cluster configuration all write their secrets here.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    write_secret(path, value)
    return value
