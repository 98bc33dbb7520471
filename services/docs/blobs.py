"""The documents Object Store as the handlers use it (`handlers.common.Blobs`), over NATS JetStream."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from nats.js import api
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_ALL_META_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

from contracts import NotFound, Unavailable
from services.kit.objects import digest_hex, read_object, space_left, sweep_cut_off

from .handlers.common import Blobs, StoredUpload

# Reading the meta entries written since the last sweep gives up after this long (what it read counts).
READ_ENTRIES_TIMEOUT_S = 60.0


class NatsBlobs(Blobs):
    def __init__(self, store: Any):  # a nats-py ObjectStore (the `documents` bucket)
        self.store = store

    async def info(self, name: str) -> tuple[int, str]:
        try:
            info = await self.store.get_info(name)
        except (ObjectNotFoundError, NotFoundError):
            raise NotFound("The uploaded file is not in the store; upload it again.") from None
        return int(info.size or 0), digest_hex(info)

    async def read(self, name: str) -> bytes:
        return await read_object(self.store, name)

    async def delete(self, name: str) -> None:
        try:
            await self.store.delete(name)
        except (ObjectNotFoundError, NotFoundError):
            pass
        except Exception as exc:
            raise Unavailable(f"The file store is not reachable ({type(exc).__name__}); try again.") from None

    async def names(self) -> set[str]:
        try:
            return {info.name for info in await self.store.list(ignore_deletes=True)}
        except (ObjectNotFoundError, NotFoundError):
            return set()  # nats-py's answer for an empty store

    async def space_left(self) -> int | None:
        try:
            return await space_left(self.store)
        except Exception:  # unknown: the upload itself still stops at the limit (HTTP 507)
            return None

    async def sweep_cut_off(self, older_than_s: float) -> int:
        return len(await sweep_cut_off(self.store, older_than_s))

    async def uploads_stored_after(self, mark: int) -> tuple[list[StoredUpload], int, bool]:
        """The uploaded originals' meta entries (writes and deletions) after stream sequence `mark`, oldest
        first; the new mark; and whether the store was read from its start because it is not the one `mark`
        was taken in (its newest meta entry is older than the mark: the stream was recreated)."""
        js: Any = self.store._js
        stream = OBJ_STREAM_TEMPLATE.format(bucket=self.store._name)
        every_meta = OBJ_ALL_META_PRE_TEMPLATE.format(bucket=self.store._name)
        try:
            newest = (await js.get_last_msg(stream, every_meta)).seq
        except NotFoundError:
            return [], 0, mark > 0  # no object at all
        restarted = newest < mark
        if restarted:
            mark = 0
        if newest == mark:
            return [], mark, restarted
        entries: list[StoredUpload] = []
        # An ordered consumer over the meta subjects from just after the mark (a meta entry is rolled up by
        # its object's next one, so only each object's latest is there); it reaches `newest` at the latest.
        sub = await js.subscribe(
            every_meta,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=mark + 1),
        )
        try:
            async with asyncio.timeout(READ_ENTRIES_TIMEOUT_S):
                async for msg in sub.messages:
                    mark = msg.metadata.sequence.stream
                    info = json.loads(msg.data)
                    name = info.get("name") or ""
                    if _is_upload(name):
                        deleted = bool(info.get("deleted"))
                        entries.append(
                            StoredUpload(name, None if deleted else _mtime(info.get("mtime")), deleted)
                        )
                    if mark >= newest or msg.metadata.num_pending == 0:
                        break
        except TimeoutError:
            pass  # the next sweep goes on from what was read
        finally:
            await sub.unsubscribe()
        return entries, mark, restarted


def _is_upload(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _mtime(raw: str | None) -> datetime | None:
    try:
        at = datetime.fromisoformat(raw or "")
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
