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
    SET_USERNAME,
    VERIFY_EMAIL,
    AuthStateEntry,
    Jwks,
)
from contracts.identity import (
    EXTERNAL_GET,
    EXTERNAL_TOKEN,
    EXTERNAL_UPDATE,
    PASSKEY_LIST,
    PASSKEY_LOGIN,
    PASSKEY_LOGIN_OPTIONS,
    PASSKEY_REGISTER,
    PASSKEY_REGISTER_OPTIONS,
    PASSKEY_REMOVE,
    PASSKEY_RENAME,
    PAT_CREATE,
    PAT_EXCHANGE,
    PAT_LIST,
    PAT_REVOKE,
    POLICY_GET,
    POLICY_UPDATE,
    RECOVERY_REGENERATE,
    SECOND_FACTOR_STATUS,
    SECOND_STEP,
    SSO_BUTTONS,
    SSO_DELETE,
    SSO_FINISH,
    SSO_LIST,
    SSO_START,
    SSO_UPSERT,
    TOTP_CONFIRM,
    TOTP_DISABLE,
    TOTP_START,
)
from services.kit.bus import Service
from services.kit.config import ServiceSettings
from services.kit.jetstream import ensure_kv
from services.kit.logging import log_fields
from services.kit.ratelimit import SharedRateLimiter, prune_rate_limits
from services.kit.secretbox import SecretBox
from services.kit.wiring import Loop, RpcTable

from . import tables
from .admin import ensure_admin
from .config import AuthConfig
from .handlers import (
    access_tokens,
    accounts,
    admin,
    external,
    housekeeping,
    passkeys,
    recovery,
    second_factor,
    security_policy,
    sessions,
    sso,
    two_step,
)
from .handlers.common import AuthDeps
from .keys import KeyRing
from .mailer import make_mailer
from .oidc import OidcClients
from .state import AuthState
from .upstream import ExternalAuth

HOUSEKEEPING_EVERY_S = 600
AUTH_SECRETS_PURPOSE = b"auth secrets"  # TOTP secrets, provider client secrets, external tokens
log = logging.getLogger("atrium.auth")

RPCS: RpcTable[AuthDeps] = {
    REGISTER: accounts.register_user,
    ME: accounts.me,
    VERIFY_EMAIL: accounts.verify_email,
    RESEND_VERIFICATION: accounts.resend_verification,
    CHANGE_EMAIL: accounts.change_email,
    SET_USERNAME: accounts.set_username,
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
    SECOND_STEP: two_step.second_step,
    TOTP_START: second_factor.totp_start,
    TOTP_CONFIRM: second_factor.totp_confirm,
    TOTP_DISABLE: second_factor.totp_disable,
    RECOVERY_REGENERATE: second_factor.regenerate_recovery_codes,
    SECOND_FACTOR_STATUS: second_factor.status,
    POLICY_GET: security_policy.get_policy,
    POLICY_UPDATE: security_policy.update_policy,
    PAT_CREATE: access_tokens.create_token,
    PAT_LIST: access_tokens.list_tokens,
    PAT_REVOKE: access_tokens.revoke_token,
    PAT_EXCHANGE: access_tokens.exchange_token,
    PASSKEY_REGISTER_OPTIONS: passkeys.register_options,
    PASSKEY_REGISTER: passkeys.register,
    PASSKEY_LIST: passkeys.list_passkeys,
    PASSKEY_RENAME: passkeys.rename,
    PASSKEY_REMOVE: passkeys.remove,
    PASSKEY_LOGIN_OPTIONS: passkeys.login_options,
    PASSKEY_LOGIN: passkeys.login,
    SSO_BUTTONS: sso.buttons,
    SSO_LIST: sso.list_providers,
    SSO_UPSERT: sso.upsert_provider,
    SSO_DELETE: sso.delete_provider,
    SSO_START: sso.start,
    SSO_FINISH: sso.finish,
    EXTERNAL_GET: external.get_settings,
    EXTERNAL_UPDATE: external.update_settings,
    EXTERNAL_TOKEN: external.external_token,
}
EXTERNAL_REFRESH_EVERY_S = 2
LOOPS = [
    Loop("housekeeping", housekeeping.housekeeping, every_s=HOUSEKEEPING_EVERY_S),
    Loop("external-token-refresh", external.refresh_due, every_s=EXTERNAL_REFRESH_EVERY_S),
    # Stores what auth_state refused, and compares it with the database (first at start).
    Loop("auth-state", housekeeping.sync_state, every_s=2.0, run_at_start=True),
    # Rate-limit windows whose events have all left them.
    Loop("auth-rate-limits", lambda deps: prune_rate_limits(deps.db, tables.rate_limits), every_s=600.0),
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
            limiter=SharedRateLimiter(tables.rate_limits, config.rate_rules, config.rate_exempt_ips).bound(
                db
            ),
            mailer=make_mailer(config),
            state=AuthState(svc.verifier, push),
            secrets=SecretBox(
                settings.platform_secret, purpose=AUTH_SECRETS_PURPOSE, missing_hint="set it and restart auth"
            ),
            oidc=OidcClients(leeway_s=config.sso_leeway_s, timeout_s=config.upstream_timeout_s),
            external=ExternalAuth(),
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
