"""Documents by status, the oldest one in each, and the document store's use of its budget: read by a
loop of the documents service (they are counts in its own tables), served as services/kit/metrics.py says."""

from __future__ import annotations

from typing import get_args

from sqlalchemy import func, select

from contracts.documents import DocumentStatus
from services.kit.metrics import Gauge

from .handlers.common import DocsDeps
from .tables import documents

EVERY_S = 15.0

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


async def record(deps: DocsDeps) -> None:
    async with deps.db.read() as s:
        rows = (
            await s.execute(
                select(
                    documents.c.status,
                    func.count(),
                    func.extract("epoch", func.now() - func.min(documents.c.updated_at)),
                ).group_by(documents.c.status)
            )
        ).all()
    seen = {status: (count, float(age or 0)) for status, count, age in rows}
    for status in get_args(DocumentStatus):
        count, age = seen.get(status, (0, 0.0))
        DOCUMENTS.labels(status).set(count)
        OLDEST_S.labels(status).set(age)
    store = getattr(deps.blobs, "store", None)  # the nats-py ObjectStore behind NatsBlobs
    if store is not None:
        info = (await store.status()).stream_info
        STORAGE_USED.labels(info.config.name).set(info.state.bytes or 0)
        STORAGE_LIMIT.labels(info.config.name).set(max(info.config.max_bytes or 0, 0))
