"""Every process of an Atrium stack. The devstack, the test harness and compose all read this list."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from services.kit.bus import Service
from services.kit.config import ServiceSettings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str  # "module:function" returning a Service
    has_db: bool = True
    replicas: int = 1

    @property
    def process_names(self) -> list[str]:
        """Each process's name (its `ATRIUM_PROCESS`, log file and metrics target): `docs-1`, `docs-2` for
        replicas, the service's name for one."""
        return [self.name] if self.replicas == 1 else [f"{self.name}-{i + 1}" for i in range(self.replicas)]

    @property
    def module(self) -> str:
        return self.factory.split(":", 1)[0].rsplit(".", 1)[0]

    def load(self) -> Callable[[ServiceSettings], Service]:
        mod, _, fn = self.factory.partition(":")
        return getattr(importlib.import_module(mod), fn)  # type: ignore[no-any-return]


# The documents service does most of the CPU work of a request (a list, a search, opening a document, an
# upload's pipeline events): as one Python process it used at most one core while the rest of the stack
# waited for it (bench/RESULTS.md, load). It is stateless between requests (its Rpc subjects are a queue
# group, its event consumers shared durables, its outbox relay one at a time by an advisory lock, its loops
# idempotent), so `atrium up` runs two, one per core of a small machine (ATRIUM_DOCS_PROCESSES).
DOCS_PROCESSES = max(1, int(os.environ.get("ATRIUM_DOCS_PROCESSES") or 2))

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", "services.auth.app:create_service"),
    ServiceSpec("profile", "services.profile.app:create_service"),
    ServiceSpec("permissions", "services.permissions.app:create_service"),
    ServiceSpec("docs", "services.docs.app:create_service", replicas=DOCS_PROCESSES),
    ServiceSpec("extract", "services.extraction.text.app:create_service", has_db=False),
    ServiceSpec("ai", "services.extraction.ai.app:create_service", has_db=False),
)


def spec(name: str) -> ServiceSpec:
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)
