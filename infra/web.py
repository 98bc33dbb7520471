"""Building the web app (`web/dist`): one recipe for `atrium up` and the browser tests.

The API types of the web app are generated from the gateway's OpenAPI: the OpenAPI document is refreshed
from the gateway app first (`python -m gateway.openapi`, written only when it changed), so a change of the
gateway's routes or contracts also makes `dist` stale and the build type-checks the app against it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
DIST = WEB / "dist"
OPENAPI = WEB / "src" / "api" / "openapi.json"
_SOURCE_FILES = ("package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json")
_SOURCE_DIRS = ("src", "public", "scripts")


def newest_source_mtime() -> float:
    paths = [WEB / name for name in _SOURCE_FILES]
    paths += [p for d in _SOURCE_DIRS for p in (WEB / d).rglob("*") if p.is_file()]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def is_stale() -> bool:
    index = DIST / "index.html"
    return not index.exists() or index.stat().st_mtime < newest_source_mtime()


def install(npm: str) -> None:
    """`npm install` when node_modules is missing or older than the lock (`npm ci` fails on this registry)."""
    lock, installed = WEB / "package-lock.json", WEB / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=WEB, check=True)


def refresh_openapi() -> None:
    subprocess.run([sys.executable, "-m", "gateway.openapi", "--out", str(OPENAPI)], cwd=ROOT, check=True)


def build(npm: str, *, announce: Callable[[], None] = lambda: None) -> bool:
    """Build `dist` when older than its sources (`announce` first); True if it built.
    Raises CalledProcessError on failure."""
    install(npm)
    refresh_openapi()
    if not is_stale():
        return False
    announce()
    # The build's own type generation uses this interpreter (the one with the gateway's dependencies).
    env = {**os.environ, "ATRIUM_PYTHON": sys.executable}
    subprocess.run([npm, "run", "build"], cwd=WEB, check=True, env=env)
    return True
