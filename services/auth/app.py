"""The auth service: its subjects, bound to handlers, its loops and its dependency factory."""

from __future__ import annotations

import logging
import os

from contracts import AtriumError
from contracts.auth import (
    ADMIN_AUDIT,
    ADMIN_DELETE_USER,
    ADMIN_END_SESSIONS,
    ADMIN_LIST_USERS,
    ADMIN_START_RESET,
    ADMIN_UPDATE_USER,
    AUTH_STATE_BUCKET,
    AUTH_STATE_PUSH,
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
    VERIFY_EMAIL,
    AuthStateEntry,
    Jwks,
)
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.jetstream import ensure_kv
from services.kit.logging import log_fields
from services.kit.ratelimit import RateLimiter
from services.kit.wiring import Loop, RpcTable

from . import tables
from .admin import ensure_admin
from .config import AuthConfig
from .handlers import accounts, admin, housekeeping, recovery, sessions
from .handlers.common import AuthDeps
from .keys import KeyRing
from .mailer import make_mailer
from .state import AuthState

HOUSEKEEPING_EVERY_S = 600
log = logging.getLogger("atrium.auth")

RPCS: RpcTable[AuthDeps] = {
    REGISTER: accounts.register_user,
    ME: accounts.me,
    VERIFY_EMAIL: accounts.verify_email,
    RESEND_VERIFICATION: accounts.resend_verification,
    CHANGE_EMAIL: accounts.change_email,
    LOGIN: sessions.login,
    REFRESH: sessions.refresh,
    LOGOUT: sessions.logout,
    LOGOUT_ALL: sessions.logout_all,
    SESSIONS: sessions.list_sessions,
    END_SESSION: sessions.end_session,
    JWKS: sessions.jwks,
    CHANGE_PASSWORD: recovery.change_password,
    FORGOT_PASSWORD: recovery.forgot_password,
    RESET_PASSWORD: recovery.reset_password,
    ADMIN_LIST_USERS: admin.admin_list_users,
    ADMIN_UPDATE_USER: admin.admin_update_user,
    ADMIN_END_SESSIONS: admin.admin_end_sessions,
    ADMIN_START_RESET: admin.admin_start_reset,
    ADMIN_AUDIT: admin.admin_audit,
    ADMIN_DELETE_USER: admin.admin_delete_user,
}
LOOPS = [
    Loop("housekeeping", housekeeping.housekeeping, every_s=HOUSEKEEPING_EVERY_S),
    # Stores what auth_state refused, and compares it with the database (first at start).
    Loop("auth-state", housekeeping.sync_state, every_s=2.0, run_at_start=True),
]


def create_service(settings: ServiceSettings) -> Service:
    keys = KeyRing(settings.data_dir / "keys" / "auth")
    keys.ensure()

    async def local_keys() -> Jwks:  # the auth service verifies with its own keys, not over the bus
        return keys.jwks()

    svc = Service(settings, key_source=local_keys)

    async def make_deps(svc: Service) -> AuthDeps:
        assert svc.verifier is not None
        config = AuthConfig.from_env(settings.data_dir)
        db = svc.database()
        # The revocation state has its own byte limit (services/kit/storage.py): uploads cannot fill it.
        await ensure_kv(svc.js, AUTH_STATE_BUCKET, history=1, manage=True)

        async def push(entry: AuthStateEntry) -> None:
            await svc.nc.publish(AUTH_STATE_PUSH.subject(), entry.model_dump_json().encode())

        deps = AuthDeps(
            db=db,
            outbox=svc.outbox(tables.outbox, db),
            keys=keys,
            config=config,
            limiter=RateLimiter(config.rate_rules, config.rate_exempt_ips),
            mailer=make_mailer(config),
            state=AuthState(svc.verifier, push),
        )
        # `ATRIUM_ADMIN_EMAIL` + `ATRIUM_ADMIN_PASSWORD` make the first admin at start (idempotent); an
        # unconfirmed account of that address is taken over only with `ATRIUM_ADMIN_RESET_PASSWORD=1`.
        email, password = os.environ.get("ATRIUM_ADMIN_EMAIL"), os.environ.get("ATRIUM_ADMIN_PASSWORD")
        if email and password:
            take_over = os.environ.get("ATRIUM_ADMIN_RESET_PASSWORD", "") in ("1", "true", "yes")
            try:
                await ensure_admin(db, email, password, policy=config.policy, nc=svc.nc, take_over=take_over)
            except (
                AtriumError
            ) as exc:  # refused (an unconfirmed account, a weak password): say so, keep serving
                log_fields(log, logging.ERROR, "ATRIUM_ADMIN_EMAIL was not applied", reason=exc.message)
        return deps

    svc.bind(make_deps, rpcs=RPCS, loops=LOOPS)
    return svc
