"""The auth service's subscribers: thin translations from bus messages to handlers."""

from __future__ import annotations

from contracts import Empty
from contracts.auth import JWKS, LOGIN, ME, REGISTER, USER_REGISTERED, LoginRequest, RegisterUser, UserRegistered

from services.kit.bus import Ctx, Service
from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.security import TokenVerifier

from . import handlers
from .keys import KeyRing


def create_service(settings: ServiceSettings) -> Service:
    svc = Service(settings)
    keys = KeyRing(settings.data_dir / "keys" / "auth")
    keys.ensure()
    db = Database(settings.database_url, settings.schema)
    svc.health_checks["postgres"] = db.ping
    svc.on_shutdown.append(db.dispose)

    async def local_keys():  # the auth service verifies with its own keys, not over the bus
        return keys.jwks()

    svc.verifier = TokenVerifier(svc, key_source=local_keys)

    async def publish_registered(event: UserRegistered) -> None:
        await svc.publish(USER_REGISTERED, event, msg_id=f"user_registered:{event.user_id}")

    deps = handlers.AuthDeps(db=db, keys=keys, publish_registered=publish_registered)

    @svc.rpc(REGISTER)
    async def register(cmd: RegisterUser, ctx: Ctx):
        return await handlers.register_user(cmd, deps, ctx)

    @svc.rpc(LOGIN)
    async def login(cmd: LoginRequest, ctx: Ctx):
        return await handlers.login(cmd, deps, ctx)

    @svc.rpc(ME)
    async def me(_: Empty, ctx: Ctx):
        return await handlers.me(deps, ctx)

    @svc.rpc(JWKS)
    async def jwks(_: Empty, ctx: Ctx):
        return keys.jwks()

    return svc
