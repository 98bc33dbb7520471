"""The profile service: its subjects, bound to handlers, and its dependency factory."""

from __future__ import annotations

from contracts.auth import USER_DELETED, USER_REGISTERED
from contracts.profile import (
    AVATAR_BUCKET,
    AVATAR_DELETE,
    AVATAR_GET,
    AVATAR_SET,
    PROFILE_GET,
    PROFILE_GET_USER,
    PROFILE_UPDATE,
)
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.jetstream import ensure_object_store
from services.kit.wiring import Consumer, EventTable, RpcTable

from . import handlers
from .handlers import ProfileDeps

RPCS: RpcTable[ProfileDeps] = {
    PROFILE_GET: handlers.get_profile,
    PROFILE_UPDATE: handlers.update_profile,
    PROFILE_GET_USER: handlers.get_user_profile,
    AVATAR_SET: handlers.set_avatar,
    AVATAR_GET: handlers.get_avatar,
    AVATAR_DELETE: handlers.delete_avatar,
}
EVENTS: EventTable[ProfileDeps] = {
    USER_REGISTERED: Consumer(handlers.on_user_registered, "profile_user_registered"),
    USER_DELETED: Consumer(handlers.forget_user, "profile_user_deleted"),
}


async def make_deps(svc: Service) -> ProfileDeps:
    return ProfileDeps(
        db=svc.database(), avatars=await ensure_object_store(svc.js, AVATAR_BUCKET, manage=True)
    )


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    svc.bind(make_deps, rpcs=RPCS, events=EVENTS)
    return svc
