"""Runs that are no longer their document's current one, in the KV bucket `superseded_runs`.

The documents service marks a run when a re-run replaces it or its document is deleted; the text and AI
workers ask before doing a run's work, so a superseded run is neither extracted nor sent to a (possibly
paid) model. Both sides fail open: a mark that could not be written or read costs work, never a result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from nats.js.errors import KeyNotFoundError

from contracts.documents import SUPERSEDED_RUN_TTL_S, SUPERSEDED_RUNS_BUCKET
from services.kit.jetstream import ensure_kv
from services.kit.logging import log_fields

log = logging.getLogger("atrium.docs.runs")

MarkSuperseded = Callable[[UUID, str], Awaitable[None]]
IsSuperseded = Callable[[UUID], Awaitable[bool]]


async def _bucket(js: Any, manage: bool = False) -> Any:
    return await ensure_kv(js, SUPERSEDED_RUNS_BUCKET, ttl_s=SUPERSEDED_RUN_TTL_S, manage=manage)


async def superseded_marker(js: Any) -> MarkSuperseded:
    """For the documents service: `await mark(run_id, "superseded" | "deleted")`."""
    kv = await _bucket(js, manage=True)

    async def mark(run_id: UUID, why: str) -> None:
        try:
            await kv.put(str(run_id), why.encode())
        except Exception as exc:
            log_fields(log, logging.WARNING, "run not marked superseded", run_id=str(run_id), error=repr(exc))

    return mark


async def superseded_check(js: Any) -> IsSuperseded:
    """For a worker: `await is_superseded(run_id)`, False when unknown or unreadable."""
    kv = await _bucket(js)

    async def is_superseded(run_id: UUID) -> bool:
        try:
            return bool((await kv.get(str(run_id))).value)
        except KeyNotFoundError:
            return False
        except Exception as exc:
            log_fields(
                log, logging.WARNING, "superseded runs unreadable", run_id=str(run_id), error=repr(exc)
            )
            return False

    return is_superseded
