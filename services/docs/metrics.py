"""Documents by status, the oldest one in each, and the document store's use of its budget: read by a
loop of the documents service (they are counts in its own tables) for its metrics, served as
services/kit/metrics.py says, and by the admin's System page (handlers/system.py)."""

from __future__ import annotations

from typing import Any, get_args

from sqlalchemy import func, select

from contracts.documents import DocumentStatus
from services.kit.db import Database
from services.kit.metrics import Gauge

from .access import as_system
from .blobs import Blobs
from .handlers.common import DocsDeps
from .tables import documents

EVERY_S = 15.0
# Every documents process (infra/catalog.py runs two) reports the same counts: aggregate them with `max`.

DOCUMENTS = Gauge("atrium_documents", "Documents by status (all users).", ["status"])
OLDEST_S = Gauge(
    "atrium_documents_oldest_seconds",
    "Seconds since the least recently changed document of a status changed (0: none): stuck documents.",
    ["status"],
)
STORAGE_USED = Gauge("atrium_storage_used_bytes", "Bytes a JetStream store holds.", ["store"])
STORAGE_LIMIT = Gauge(
    "atrium_storage_limit_bytes", "Bytes a JetStream store may hold (its share of the budget).", ["store"]
)


async def documents_by_status(db: Database) -> dict[str, tuple[int, float]]:
    """status → (documents, seconds since the least recently changed one changed), every status present.
    Counts of everyone's documents: read past row-level security (`as_system`, in one transaction, which
    is where the database learns who acts)."""
    async with as_system(db, "status", write=False) as s:
        rows = (
            await s.execute(
                select(
                    documents.c.status,
                    func.count(),
                    func.extract("epoch", func.now() - func.min(documents.c.updated_at)),
                ).group_by(documents.c.status)
            )
        ).all()
    seen = {status: (int(count), float(age or 0)) for status, count, age in rows}
    return {status: seen.get(status, (0, 0.0)) for status in get_args(DocumentStatus)}


async def store_usage(blobs: Blobs) -> tuple[str, int, int] | None:
    """(stream, bytes held, byte limit) of the document store; None when it is not a NATS store."""
    store: Any = getattr(blobs, "store", None)  # the nats-py ObjectStore behind NatsBlobs
    if store is None:
        return None
    info = (await store.status()).stream_info
    return info.config.name, int(info.state.bytes or 0), max(int(info.config.max_bytes or 0), 0)


async def record(deps: DocsDeps) -> None:
    for status, (count, age) in (await documents_by_status(deps.db)).items():
        DOCUMENTS.labels(status).set(count)
        OLDEST_S.labels(status).set(age)
    usage = await store_usage(deps.blobs)
    if usage:
        name, used, limit = usage
        STORAGE_USED.labels(name).set(used)
        STORAGE_LIMIT.labels(name).set(limit)
