"""The auth service's subscribers: thin translations from bus messages to handlers."""

from __future__ import annotations

import asyncio
import logging
import os

from contracts import Empty
from contracts.auth import (
    ADMIN_AUDIT,
    ADMIN_DELETE_USER,
    ADMIN_END_SESSIONS,
    ADMIN_LIST_USERS,
    ADMIN_START_RESET,
    ADMIN_UPDATE_USER,
    CHANGE_EMAIL,
    CHANGE_PASSWORD,
    END_SESSION,
    FORGOT_PASSWORD,
    JWKS,
    LOGIN,
    LOGOUT,
    LOGOUT_ALL,
    ME,
    REFRESH,
    REGISTER,
    RESEND_VERIFICATION,
    RESET_PASSWORD,
    SESSIONS,
    USER_CHANGED,
    USER_DELETED,
    USER_REGISTERED,
    VERIFY_EMAIL,
    Jwks,
    UserChanged,
    UserDeleted,
    UserRegistered,
)
from services.kit.bus import Ctx, Service
from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.ratelimit import RateLimiter

from . import handlers
from .admin import ensure_admin
from .config import AuthConfig
from .keys import KeyRing
from .mailer import make_mailer
from .state import AuthState

log = logging.getLogger("atrium.auth")
HOUSEKEEPING_EVERY_S = 600


def create_service(settings: ServiceSettings) -> Service:
    config = AuthConfig.from_env(settings.data_dir)
    keys = KeyRing(settings.data_dir / "keys" / "auth")
    keys.ensure()

    async def local_keys() -> Jwks:  # the auth service verifies with its own keys, not over the bus
        return keys.jwks()

    svc = Service(settings, key_source=local_keys)
    verifier = svc.verifier
    assert verifier is not None
    db = Database(settings.database_url, settings.schema)
    svc.health_checks["postgres"] = db.ping
    svc.on_shutdown.append(db.dispose)

    async def publish_registered(event: UserRegistered) -> None:
        await svc.publish(USER_REGISTERED, event, msg_id=f"user_registered:{event.user_id}")

    async def publish_changed(event: UserChanged) -> None:
        await svc.publish(
            USER_CHANGED, event, msg_id=f"user_changed:{event.user_id}:{event.changed_at.timestamp()}"
        )

    async def publish_deleted(event: UserDeleted) -> None:
        await svc.publish(USER_DELETED, event, msg_id=f"user_deleted:{event.user_id}")

    deps = handlers.AuthDeps(
        db=db,
        keys=keys,
        publish_registered=publish_registered,
        publish_changed=publish_changed,
        publish_deleted=publish_deleted,
        config=config,
        limiter=RateLimiter(config.rate_rules, config.rate_exempt_ips),
        mailer=make_mailer(config),
        state=AuthState(verifier),
    )

    # Each subscriber: (descriptor, handler taking (command, deps, ctx)) or (deps, ctx) for empty requests.
    with_command = {
        REGISTER: handlers.register_user,
        LOGIN: handlers.login,
        REFRESH: handlers.refresh,
        LOGOUT: handlers.logout,
        END_SESSION: handlers.end_session,
        CHANGE_PASSWORD: handlers.change_password,
        FORGOT_PASSWORD: handlers.forgot_password,
        RESET_PASSWORD: handlers.reset_password,
        VERIFY_EMAIL: handlers.verify_email,
        CHANGE_EMAIL: handlers.change_email,
        ADMIN_LIST_USERS: handlers.admin_list_users,
        ADMIN_UPDATE_USER: handlers.admin_update_user,
        ADMIN_END_SESSIONS: handlers.admin_end_sessions,
        ADMIN_START_RESET: handlers.admin_start_reset,
        ADMIN_AUDIT: handlers.admin_audit,
        ADMIN_DELETE_USER: handlers.admin_delete_user,
    }
    for desc, fn in with_command.items():

        async def subscriber(cmd, ctx: Ctx, fn=fn):  # type: ignore[no-untyped-def]
            return await fn(cmd, deps, ctx)

        svc.rpc(desc)(subscriber)

    without_command = {
        ME: handlers.me,
        LOGOUT_ALL: handlers.logout_all,
        SESSIONS: handlers.list_sessions,
        RESEND_VERIFICATION: handlers.resend_verification,
    }
    for desc, fn in without_command.items():

        async def subscriber_empty(_: Empty, ctx: Ctx, fn=fn):  # type: ignore[no-untyped-def]
            return await fn(deps, ctx)

        svc.rpc(desc)(subscriber_empty)

    async def admin_from_environment() -> None:
        """`ATRIUM_ADMIN_EMAIL` + `ATRIUM_ADMIN_PASSWORD` make the first admin at start (idempotent)."""
        email, password = os.environ.get("ATRIUM_ADMIN_EMAIL"), os.environ.get("ATRIUM_ADMIN_PASSWORD")
        if email and password:
            await ensure_admin(db, email, password, policy=config.policy, nc=svc.nc)

    svc.on_startup.append(admin_from_environment)

    async def housekeeping_loop() -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY_S)
            try:
                await handlers.housekeeping(deps)
            except Exception:
                log.exception("auth housekeeping failed; will try again")

    async def start_housekeeping() -> None:
        tasks.append(asyncio.create_task(housekeeping_loop()))

    async def stop_housekeeping() -> None:
        for task in tasks:
            task.cancel()

    tasks: list[asyncio.Task[None]] = []
    svc.on_startup.append(start_housekeeping)
    svc.on_shutdown.append(stop_housekeeping)

    @svc.rpc(JWKS)
    async def jwks(_: Empty, ctx: Ctx):
        return keys.jwks()

    return svc
