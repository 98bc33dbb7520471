"""The documents Object Store as the handlers use it (`handlers.common.Blobs`), over NATS JetStream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.errors import NotFoundError, ObjectNotFoundError

from contracts import NotFound, Unavailable
from services.kit.objects import digest_hex, read_object, space_left, sweep_cut_off

from .handlers.common import Blobs


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

    async def uploads_older_than(self, older_than_s: float) -> set[str]:
        """Uploaded originals (the gateway names them by a UUID; a run's results, previews and text layers
        live under a prefix) whose write finished before the cut-off. An unreadable time: not old."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        try:
            infos = await self.store.list(ignore_deletes=True)
        except (ObjectNotFoundError, NotFoundError):
            return set()
        return {i.name for i in infos if _is_upload(i.name) and (_mtime(i.mtime) or cutoff) < cutoff}


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
