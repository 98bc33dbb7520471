"""`/api/v1/events`: server-sent events with the caller's own document progress and status changes.

The documents service says whose progress the caller may follow (`docs.events.grant` verifies the
token and the app grant); the gateway then listens on `progress.docs.<owner>.*` only. Progress is
best effort: the current state of every document always comes from `GET /documents`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from contracts import Empty, Unavailable
from contracts import docs_api as api
from contracts.documents import DOCUMENT_PROGRESS, DocumentProgress

from ..bus import Call
from ..errors import errors
from ..http_types import event_stream
from ..transport import Token

router = APIRouter(tags=["documents"], responses=errors(401, 403))

HEARTBEAT_S = 15.0
QUEUE_MAX = 256


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.get(
    "/events",
    summary="Live progress of your documents (text/event-stream)",
    response_class=EventStreamResponse,
    responses=event_stream(
        DocumentProgress,
        event="progress",
        description="An endless `text/event-stream`: a `: connected` comment once subscribed, `: keep-alive` "
        "every 15 s, and one `event: progress` per change whose `data:` is a `DocumentProgress` as JSON.",
    ),
)
async def events(request: Request, call: Call, token: Token) -> StreamingResponse:
    grant: api.EventsGrant = await call(api.EVENTS_GRANT, Empty(), token=token)
    nc = request.app.state.bus.nc
    if nc is None:
        raise Unavailable("The message bus is not reachable.")
    queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)

    async def on_message(msg: Any) -> None:
        if queue.full():  # a slow client loses the oldest progress, never the connection
            queue.get_nowait()
        queue.put_nowait(msg.data)

    sub = await nc.subscribe(DOCUMENT_PROGRESS.wildcard(str(grant.owner_id)), cb=on_message)
    await nc.flush(timeout=5)  # the server knows the subscription before the client hears "connected"

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                try:
                    payload = DOCUMENT_PROGRESS.model.model_validate_json(data).model_dump(mode="json")
                except Exception:
                    continue
                yield f"event: progress\ndata: {json.dumps(payload)}\n\n"
        finally:
            await sub.unsubscribe()

    return EventStreamResponse(
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
