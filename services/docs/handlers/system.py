"""The admin's System page, documents side: documents per status, the pipeline's queues, storage used."""

from __future__ import annotations

from contracts import Empty
from contracts.docs_api import SystemStatus
from services.kit.context import Ctx

from .. import metrics
from .common import DocsDeps


async def system_status(_: Empty, ctx: Ctx, deps: DocsDeps) -> SystemStatus:
    by_status = await metrics.documents_by_status(deps.db)
    usage = await metrics.store_usage(deps.blobs)
    return SystemStatus(
        documents={status: count for status, (count, _) in by_status.items()},
        oldest_s={status: round(age, 1) for status, (_, age) in by_status.items()},
        queues=await deps.queues(),
        storage_used_bytes=usage[1] if usage else 0,
        storage_limit_bytes=usage[2] if usage else 0,
    )
