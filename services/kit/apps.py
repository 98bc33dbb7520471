"""What every app service shares: announcing its manifest, and refusing users without a grant.

`announce_app(svc, manifest)` publishes the manifest when the service starts and every
`ANNOUNCE_INTERVAL_S` after, so the permissions registry can show an app that stopped
announcing as unavailable.

`AppAccessGuard(svc, app_key)` is the check the owner of an app's data runs in every handler:
`await guard.check(ctx.require_actor())`. It asks `permissions.access.check` with the user's own
token and caches the answer per user in a `PermissionsFollowingCache`, which forgets a user the moment
`events.permissions.changed` names them: every instance of every app must see every change, so it
listens with a plain core-NATS subscription (no queue group, no shared durable consumer, which
would hand each change to only one instance). A change missed while disconnected is covered by
forgetting the cache after each reconnect, and a TTL bounds any other staleness. The documents
service keeps each user's groups in one too (what is shared with them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from contracts import Forbidden
from contracts.permissions import (
    ACCESS_CHECK,
    ANNOUNCE_INTERVAL_S,
    APP_ANNOUNCED,
    PERMISSIONS_CHANGED,
    AccessCheck,
    AppManifest,
    PermissionsChanged,
)

from .bus import Service
from .client import call
from .logging import log_fields
from .security import Actor

log = logging.getLogger("atrium.apps")

T = TypeVar("T")


def announce_app(service: Service, manifest: AppManifest, *, interval_s: float = ANNOUNCE_INTERVAL_S) -> None:
    """Announce `manifest` from the service's start until its stop."""
    task: asyncio.Task[None] | None = None

    async def announce() -> None:
        try:
            await service.publish(
                APP_ANNOUNCED, manifest.model_copy(update={"announced_at": datetime.now(UTC)})
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NATS away for a moment: the next tick tries again
            log_fields(log, logging.WARNING, "app announcement failed", app=manifest.key, error=repr(exc))

    async def keep_announcing() -> None:
        while True:
            await asyncio.sleep(interval_s)
            await announce()

    async def start() -> None:
        nonlocal task
        # The first announcement is stored before the app serves anything, so the registry learns
        # of it (and of its default grant) before the app's first user can arrive.
        await announce()
        task = asyncio.create_task(keep_announcing(), name=f"announce-{manifest.key}")

    async def stop() -> None:
        if task is not None:
            task.cancel()

    service.on_startup.append(start)
    service.on_shutdown.append(stop)


class PermissionsFollowingCache(Generic[T]):
    """Per-user answers of the permissions service, forgotten the moment `events.permissions.changed`
    names the user (on every instance: a plain core-NATS subscription, no queue group), after a reconnect
    (a change may have been missed) and after `ttl_s` in any case.

    `await cache.get(actor, fetch)` returns the cached answer or awaits `fetch()` and keeps it, unless a
    change arrived while it was in flight (a generation counter), so a stale answer is never cached.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, service: Service, *, ttl_s: float = 60.0):
        self.service = service
        self.ttl_s = ttl_s
        self._cache: dict[UUID, tuple[T, float]] = {}
        # Bumped by every invalidation, so an answer that was in flight during a change is not cached.
        self._generation = 0
        self._reconnects_seen = 0
        self._sub: Any = None
        service.on_startup.append(self.start)
        service.on_shutdown.append(self.stop)

    async def start(self) -> None:
        if self._sub is None:
            self._sub = await self.service.nc.subscribe(PERMISSIONS_CHANGED.subject, cb=self._on_changed)
            self._reconnects_seen = self._reconnects()

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
            self._sub = None

    async def get(self, user_id: UUID, fetch: Callable[[], Awaitable[T]]) -> T:
        if self._sub is None:  # created after the service started: listen before trusting any cache
            await self.start()
        self._forget_after_reconnect()
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        generation = self._generation
        value = await fetch()
        if generation == self._generation:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[user_id] = (value, now + self.ttl_s)
        return value

    def cached(self, user_id: UUID) -> T | None:
        """The cached answer for a user, if any (for diagnostics and tests)."""
        hit = self._cache.get(user_id)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def forget(self, user_ids: list[UUID] | None = None) -> None:
        self._generation += 1
        if user_ids is None:
            self._cache.clear()
        else:
            for uid in user_ids:
                self._cache.pop(uid, None)

    async def _on_changed(self, msg: Any) -> None:
        try:
            change = PermissionsChanged.model_validate_json(msg.data)
        except Exception:
            self.forget()  # unreadable: forgetting everything is always safe
            return
        self.forget(list(change.user_ids))

    def _reconnects(self) -> int:
        nc = self.service.nc
        return int(nc.stats.get("reconnects", 0)) if nc is not None else 0

    def _forget_after_reconnect(self) -> None:
        seen = self._reconnects()
        if seen != self._reconnects_seen:
            self._reconnects_seen = seen
            self.forget()


class AppAccessGuard:
    """Per-app access check with a cache that `events.permissions.changed` invalidates at once."""

    def __init__(
        self,
        service: Service,
        app_key: str,
        *,
        app_name: str | None = None,
        ttl_s: float = 60.0,
        timeout_s: float = 5.0,
    ):
        self.service = service
        self.app_key = app_key
        self.app_name = app_name or app_key.replace("_", " ").title()
        self.timeout_s = timeout_s
        self.decisions: PermissionsFollowingCache[bool] = PermissionsFollowingCache(service, ttl_s=ttl_s)

    async def check(self, actor: Actor) -> None:
        """Return if `actor` may use this app; raise `Forbidden` otherwise."""
        if actor.is_admin or actor.kind == "service":
            return
        if not await self.allowed(actor):
            raise Forbidden(
                f"You do not have access to the {self.app_name} app; ask an administrator.",
                {"app_key": self.app_key},
            )

    async def allowed(self, actor: Actor) -> bool:
        async def ask() -> bool:
            decision = await call(
                self.service.nc,
                ACCESS_CHECK,
                AccessCheck(user_id=actor.user_id, app_key=self.app_key),
                token=actor.token,
                timeout=self.timeout_s,
            )
            return bool(decision.allowed)

        return await self.decisions.get(actor.user_id, ask)

    def cached(self, user_id: UUID) -> bool | None:
        """The cached decision for a user, if any (for diagnostics and tests)."""
        return self.decisions.cached(user_id)

    def forget(self, user_ids: list[UUID] | None = None) -> None:
        self.decisions.forget(user_ids)
