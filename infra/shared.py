"""Where the read-only `shared/` folder (the PDF corpus for tests, benchmarks and `atrium seed`; the
compose spec) lives. It is not in the repository: it sits beside it. CI runs in a fresh clone somewhere
else, so a clone of a local checkout also looks beside the checkout it came from. `ATRIUM_SHARED`
overrides both."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _origin_checkout() -> Path | None:
    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not url or "://" in url or url.startswith("git@"):
        return None  # a remote repository: no shared folder beside it on this machine
    return Path(url.removeprefix("file:")).resolve()


@cache
def shared_dir() -> Path:
    if os.environ.get("ATRIUM_SHARED"):
        return Path(os.environ["ATRIUM_SHARED"])
    beside = ROOT.parent / "shared"
    if beside.is_dir():
        return beside
    origin = _origin_checkout()
    if origin is not None and (origin.parent / "shared").is_dir():
        return origin.parent / "shared"
    return beside  # missing: whoever reads it fails naming this path


def corpus_dir() -> Path:
    return shared_dir() / "corpus"
