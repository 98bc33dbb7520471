"""`/api/v1/events`: server-sent events with the caller's own document progress and status changes.

The documents service says whose progress the caller may follow (`docs.events.grant` verifies the
token and the app grant); the gateway then listens on `progress.docs.<owner>.*` only. Progress is
best effort: the current state of every document always comes from `GET /documents`.

A stream lives only as long as the session that opened it (issue 13 item 13): every heartbeat asks for
the grant again with the same token, so a logout, logout everywhere, deactivation, a withdrawn app grant
or the token's expiry ends the stream at the next heartbeat (with an `event: end` saying why). Each user
may hold `sse_streams_per_user` streams at once per gateway; one more is refused with 429.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from contracts import AtriumError, Empty, RateLimited, Unavailable
from contracts import docs_api as api
from contracts.documents import DOCUMENT_PROGRESS, DocumentProgress

from ..bus import Call
from ..errors import errors
from ..http_types import event_stream
from ..settings import GatewaySettings
from ..transport import Token

router = APIRouter(tags=["documents"], responses=errors(401, 403, 429))

QUEUE_MAX = 256


def open_streams(request: Request) -> Counter[str]:
    """Open streams per user on this gateway."""
    state = request.app.state
    if not hasattr(state, "open_streams"):
        state.open_streams = Counter()
    return state.open_streams  # type: ignore[no-any-return]


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.get(
    "/events",
    summary="Live progress of your documents (text/event-stream)",
    response_class=EventStreamResponse,
    responses=event_stream(
        DocumentProgress,
        event="progress",
        description="A `text/event-stream` for as long as the session lasts: a `: connected` comment once "
        "subscribed, `: keep-alive` every 15 s, one `event: progress` per change whose `data:` is a "
        '`DocumentProgress` as JSON, and `event: end` (`data: {"reason": …}`) when the session ended.',
    ),
)
async def events(request: Request, call: Call, token: Token) -> StreamingResponse:
    grant: api.EventsGrant = await call(api.EVENTS_GRANT, Empty(), token=token)
    settings: GatewaySettings = request.app.state.settings
    nc = request.app.state.bus.nc
    if nc is None:
        raise Unavailable("The message bus is not reachable.")
    user = str(grant.owner_id)
    streams = open_streams(request)
    if streams[user] >= settings.sse_streams_per_user:
        raise RateLimited(
            f"You have {streams[user]} event streams open, the most allowed; close a tab or window first.",
            {"retry_after_s": int(settings.sse_heartbeat_s), "limit": settings.sse_streams_per_user},
        )
    streams[user] += 1
    queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)

    async def on_message(msg: Any) -> None:
        if queue.full():  # a slow client loses the oldest progress, never the connection
            queue.get_nowait()
        queue.put_nowait(msg.data)

    async def session_ended() -> str | None:
        """Why the session that opened this stream no longer holds (the grant refused), else None."""
        try:
            await call(api.EVENTS_GRANT, Empty(), token=token)
        except AtriumError as exc:  # fail closed: the client reconnects and is checked afresh
            return exc.code.value
        return None

    try:
        sub = await nc.subscribe(DOCUMENT_PROGRESS.wildcard(user), cb=on_message)
        await nc.flush(timeout=5)  # the server knows the subscription before the client hears "connected"
    except BaseException:
        streams[user] -= 1
        raise

    async def stream() -> AsyncIterator[str]:
        heartbeat = settings.sse_heartbeat_s
        try:
            yield "retry: 3000\n: connected\n\n"
            next_check = time.monotonic() + heartbeat
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), max(0.0, next_check - time.monotonic()))
                except TimeoutError:
                    data = None
                if time.monotonic() >= next_check:  # every heartbeat, busy or not
                    if await request.is_disconnected():
                        return
                    reason = await session_ended()
                    if reason:
                        yield f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"
                        return
                    next_check = time.monotonic() + heartbeat
                    if data is None:
                        yield ": keep-alive\n\n"
                if data is None:
                    continue
                try:
                    payload = DOCUMENT_PROGRESS.model.model_validate_json(data).model_dump(mode="json")
                except Exception:
                    continue
                yield f"event: progress\ndata: {json.dumps(payload)}\n\n"
        finally:
            streams[user] -= 1
            if streams[user] <= 0:
                del streams[user]
            await sub.unsubscribe()

    return EventStreamResponse(
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
