"""`/api/v1/events`: server-sent events with the progress of the caller's documents and of those shared
with them.

The documents service says whose progress the caller may follow (`docs.events.grant` verifies the token
and the app grant): their own subjects `progress.docs.<caller>.*`, and those of the owners who share
documents with them. A message about another owner's document is forwarded only after
`docs.events.check` says the caller may read that document now (asked once per batch of messages, for
their own documents too), so a revoked share, a removed group member, a deleted document or a deactivated
user stops the progress with the next message. Progress is best effort: the current state of every
document always comes from `GET /documents`.

A stream lives only as long as the session that opened it (issue 13 item 13): every heartbeat asks for
the grant again with the same token, so a logout, logout everywhere, deactivation, a withdrawn app grant
or the token's expiry ends the stream at the next heartbeat (with an `event: end` saying why); the same
grant says whose progress to follow now (a new share adds its owner). Each user may hold
`sse_streams_per_user` streams at once per gateway; one more is refused with 429.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from contracts import AtriumError, Empty, RateLimited, Unavailable
from contracts import docs_api as api
from contracts.documents import DOCUMENT_PROGRESS, DocumentProgress

from ..bus import Call, CallContext
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


class Following:
    """The progress subjects one stream listens on, kept equal to the latest grant."""

    def __init__(self, nc: Any, queue: asyncio.Queue[bytes]):
        self.nc = nc
        self.queue = queue
        self.subs: dict[UUID, Any] = {}

    async def on_message(self, msg: Any) -> None:
        if self.queue.full():  # a slow client loses the oldest progress, never the connection
            self.queue.get_nowait()
        self.queue.put_nowait(msg.data)

    async def follow(self, grant: api.EventsGrant) -> None:
        owners = {grant.owner_id, *grant.shared_owner_ids}
        for owner in set(self.subs) - owners:
            await self.subs.pop(owner).unsubscribe()
        for owner in owners - set(self.subs):
            self.subs[owner] = await self.nc.subscribe(
                DOCUMENT_PROGRESS.wildcard(str(owner)), cb=self.on_message
            )
        await self.nc.flush(timeout=5)  # the server knows the subscriptions before the client hears of them

    async def close(self) -> None:
        for sub in self.subs.values():
            await sub.unsubscribe()
        self.subs.clear()


async def _allowed(call: CallContext, token: str | None, batch: list[bytes]) -> list[DocumentProgress]:
    """The batch's progress the caller may see now (one question to the documents service per batch)."""
    items: list[DocumentProgress] = []
    for data in batch:
        try:
            items.append(DOCUMENT_PROGRESS.model.model_validate_json(data))
        except Exception:
            continue
    if not items:
        return []
    asked = api.EventsCheck(document_ids=list({p.document_id for p in items}))
    reply: api.EventsAllowed = await call(api.EVENTS_CHECK, asked, token=token)
    allowed = set(reply.document_ids)
    return [p for p in items if p.document_id in allowed]


@router.get(
    "/events",
    summary="Live progress of your documents and those shared with you (text/event-stream)",
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
    following = Following(nc, queue)
    try:
        await following.follow(grant)
    except BaseException:
        streams[user] -= 1
        await following.close()
        raise

    def end(reason: str) -> str:
        return f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"

    async def stream() -> AsyncIterator[str]:
        heartbeat = settings.sse_heartbeat_s
        try:
            yield "retry: 3000\n: connected\n\n"
            next_check = time.monotonic() + heartbeat
            while True:
                first: bytes | None
                try:
                    first = await asyncio.wait_for(queue.get(), max(0.0, next_check - time.monotonic()))
                except TimeoutError:
                    first = None
                if time.monotonic() >= next_check:  # every heartbeat, busy or not
                    if await request.is_disconnected():
                        return
                    try:  # still signed in, still granted; and whose progress to follow now
                        await following.follow(await call(api.EVENTS_GRANT, Empty(), token=token))
                    except AtriumError as exc:  # fail closed: the client reconnects and is checked afresh
                        yield end(exc.code.value)
                        return
                    next_check = time.monotonic() + heartbeat
                    if first is None:
                        yield ": keep-alive\n\n"
                if first is None:
                    continue
                batch = [first]
                while not queue.empty() and len(batch) < QUEUE_MAX:
                    batch.append(queue.get_nowait())
                try:
                    shown = await _allowed(call, token, batch)
                except AtriumError as exc:
                    yield end(exc.code.value)
                    return
                for progress in shown:
                    yield f"event: progress\ndata: {json.dumps(progress.model_dump(mode='json'))}\n\n"
        finally:
            streams[user] -= 1
            if streams[user] <= 0:
                del streams[user]
            await following.close()

    return EventStreamResponse(
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
