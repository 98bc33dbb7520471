"""`/api/v1/events`: server-sent events with the progress of the caller's documents and of those shared
with them.

The documents service says whose progress the caller may follow (`docs.events.grant` verifies the token
and the app grant): their own subjects `progress.docs.<caller>.*`, and those of the owners who share
documents with them. A message about another owner's document is forwarded only after
`docs.events.check` says the caller may read that document now (asked once per batch of messages, for
their own documents too), so a revoked share, a removed group member, a deleted document or a deactivated
user stops the progress with the next message. The grant is asked again every
heartbeat: an ended session closes the stream, a new share adds its owner. Progress is best effort: the
current state of every document always comes from `GET /documents`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from contracts import AtriumError, Empty, Unavailable
from contracts import docs_api as api
from contracts.documents import DOCUMENT_PROGRESS, DocumentProgress

from ..bus import Call, CallContext
from ..errors import errors
from ..http_types import event_stream
from ..transport import Token

router = APIRouter(tags=["documents"], responses=errors(401, 403))

HEARTBEAT_S = 15.0
QUEUE_MAX = 256


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
    following = Following(nc, queue)
    await following.follow(grant)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    first = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    try:  # still signed in, still granted; and whose progress to follow now
                        await following.follow(await call(api.EVENTS_GRANT, Empty(), token=token))
                    except AtriumError as err:
                        yield f"event: error\ndata: {json.dumps(err.to_body().model_dump(mode='json'))}\n\n"
                        return
                    yield ": keep-alive\n\n"
                    continue
                batch = [first]
                while not queue.empty() and len(batch) < QUEUE_MAX:
                    batch.append(queue.get_nowait())
                try:
                    shown = await _allowed(call, token, batch)
                except AtriumError as err:
                    yield f"event: error\ndata: {json.dumps(err.to_body().model_dump(mode='json'))}\n\n"
                    return
                for progress in shown:
                    yield f"event: progress\ndata: {json.dumps(progress.model_dump(mode='json'))}\n\n"
        finally:
            await following.close()

    return EventStreamResponse(
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
