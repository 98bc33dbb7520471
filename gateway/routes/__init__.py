"""Route modules, one per domain. Each exposes `router` (mounted under /api/v1) and optionally
`root_router` (mounted at /). `auth` and `health` are mounted explicitly first."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

_EXPLICIT = {"auth", "health"}


def _modules():  # type: ignore[no-untyped-def]
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        yield info.name, importlib.import_module(f"{__name__}.{info.name}")


def discover() -> list[APIRouter]:
    return [m.router for name, m in _modules() if name not in _EXPLICIT and hasattr(m, "router")]


def discover_root() -> list[APIRouter]:
    return [m.root_router for _, m in _modules() if hasattr(m, "root_router")]
