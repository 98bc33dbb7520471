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
    # With two processes or more, the last one works through the service's events and the others answer its
    # requests (services/kit/config.py, ROLES); else each does both.
    split_roles: bool = False
    background: bool = False  # its work is the pipeline's: run at BACKGROUND_NICENESS
    # Requests one `requests` process handles at once (ATRIUM_CONCURRENCY), when not the default: it answers
    # every request of the service alone.
    request_concurrency: int | None = None

    @property
    def process_names(self) -> list[str]:
        """Each process's name (its `ATRIUM_PROCESS`, log file and metrics target): `docs-1`, `docs-2` for
        replicas, the service's name for one."""
        return [self.name] if self.replicas == 1 else [f"{self.name}-{i + 1}" for i in range(self.replicas)]

    def role_of(self, process_name: str) -> str:
        """The `ATRIUM_ROLE` of one of `process_names`."""
        names = self.process_names
        if not self.split_roles or len(names) < 2:
            return "all"
        return "events" if process_name == names[-1] else "requests"

    def niceness_of(self, process_name: str) -> int:
        """The `ATRIUM_NICE` of one of `process_names`: background work runs below the requests."""
        return BACKGROUND_NICENESS if self.background or self.role_of(process_name) == "events" else 0

    def environment_of(self, process_name: str) -> dict[str, str]:
        """What one of `process_names` is told beside its name: its role, its priority and its concurrency."""
        role = self.role_of(process_name)
        env = {"ATRIUM_ROLE": role, "ATRIUM_NICE": str(self.niceness_of(process_name))}
        if role == "requests" and self.request_concurrency:
            env["ATRIUM_CONCURRENCY"] = str(self.request_concurrency)
        return env

    @property
    def module(self) -> str:
        return self.factory.split(":", 1)[0].rsplit(".", 1)[0]

    def load(self) -> Callable[[ServiceSettings], Service]:
        mod, _, fn = self.factory.partition(":")
        return getattr(importlib.import_module(mod), fn)  # type: ignore[no-any-return]


# How much lower the pipeline's processes run (the extraction workers, the documents service's `events`
# process): under contention a niceness of 10 gets about a tenth of the CPU a request process gets, and all of
# what the requests leave idle. 200 users on 2 cores: worst read p95 ≈ 0.9–1 s with every process equal,
# 0.32–0.97 s with these below (about half the runs under 0.5 s), p50 260 → 60–170 ms, and the pipeline still kept
# up with 8 uploads a second; with every process's start-up heap also frozen (kit metrics `watch_runtime`)
# 0.13–0.25 s in every run, with the request slots served in arrival order 0.08–0.20 s (bench/RESULTS.md, load).
BACKGROUND_NICENESS = 10

# The documents service does most of the CPU work of a request (a list, a search, opening a document, an
# upload's pipeline events): as one Python process it used at most one core while the rest of the stack
# waited for it (bench/RESULTS.md, load). It is stateless between requests (its Rpc subjects are a queue
# group, its event consumers shared durables, its outbox relay one at a time by an advisory lock, its loops
# idempotent), so `atrium up` runs two (ATRIUM_DOCS_PROCESSES): one answers requests, the other works through
# the pipeline's events at a lower CPU priority, so a burst of uploads does not slow everyone's reads (with
# three or more, all but the last answer requests).
DOCS_PROCESSES = max(1, int(os.environ.get("ATRIUM_DOCS_PROCESSES") or 2))

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", "services.auth.app:create_service"),
    ServiceSpec("profile", "services.profile.app:create_service"),
    ServiceSpec("permissions", "services.permissions.app:create_service"),
    # 16 requests at once in the process answering them (the default 8 filled up under 200 users: an upload's
    # create holds its slot while it waits for the owner's lock, and requests queued before the handler —
    # list p95 92 ms in the handler, 600 ms at the client; 16: 290 ms at the client).
    ServiceSpec(
        "docs",
        "services.docs.app:create_service",
        replicas=DOCS_PROCESSES,
        split_roles=True,
        request_concurrency=16,
    ),
    ServiceSpec("extract", "services.extraction.text.app:create_service", has_db=False, background=True),
    ServiceSpec("ai", "services.extraction.ai.app:create_service", has_db=False, background=True),
)


def spec(name: str) -> ServiceSpec:
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)
