"""The external authentication server mode: an OAuth2 server checks the passwords (password grant on its
token endpoint) and Atrium keeps its tokens for the user's session.

- Sign-in: every account except a local administrator is checked by the external server (administrators
  keep signing in with their local password, also while the server is down). A right password opens an
  Atrium session; the account is created on its first sign-in when allowed.
- The external tokens are stored with the session, AES-GCM-encrypted under the platform secret.
- A loop refreshes them `refresh_buffer_s` (`TOKEN_REFRESH_BUFFER`) before they expire. A refresh takes the
  row's lock (`FOR UPDATE`; the loop skips locked rows), so however many replicas, loops and requests want
  the same token at once, the server sees one refresh and everyone gets its result — a refresh token is
  never presented twice, which rotating servers punish by revoking the grant.
- A refresh the server refuses (`invalid_grant`) ends the Atrium session; one that fails because the
  server is down or slow is retried on the next pass, with the error kept on the row.
- Signing out drops the tokens (`common.end_sessions`).
- Every call has a timeout, retries with exponential backoff and a circuit breaker (`upstream.Upstream`);
  errors say whether the server is down, slow or refusing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import AtriumError, Empty, Invalid, NotFound, Timeout, Unauthenticated, Unavailable
from contracts.auth import TokenPair
from contracts.identity import ExternalAccessToken, ExternalAuthSettings, ExternalAuthUpdate
from services.kit.context import Ctx

from ..rows import UserRow
from ..tables import external_tokens, sessions
from ..upstream import EXTERNAL_SERVER, ExternalAuth
from .accounts import create_passwordless_account
from .common import AuthDeps, audit, end_sessions, now
from .factors import read_setting, write_setting
from .signin import open_session

SETTINGS_KEY = "external_auth"

BATCH = 100


class Refreshed(Enum):
    OK = "ok"
    FAILED = "failed"  # down or slow: try again later
    REFUSED = "refused"  # the server refused the refresh token: the session has ended


async def stored_settings(s: AsyncSession) -> dict[str, Any]:
    return await read_setting(s, SETTINGS_KEY) or {}


def _public(deps: AuthDeps, stored: dict[str, Any]) -> ExternalAuthSettings:
    fields = {k: v for k, v in stored.items() if k in ExternalAuthSettings.model_fields}
    return ExternalAuthSettings(
        **fields,
        client_secret_set=bool(stored.get("client_secret_enc")),
        circuit_open=bool(stored.get("token_url")) and deps.external.upstream(stored).circuit_open,
    )


async def get_settings(_: Empty, ctx: Ctx, deps: AuthDeps) -> ExternalAuthSettings:
    async with deps.db.session() as s:
        return _public(deps, await stored_settings(s))


async def update_settings(cmd: ExternalAuthUpdate, ctx: Ctx, deps: AuthDeps) -> ExternalAuthSettings:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        stored = await stored_settings(s)
        new = {**stored, **cmd.model_dump(exclude={"client_secret"})}
        if cmd.client_secret is not None:
            new["client_secret_enc"] = deps.secrets.encrypt(cmd.client_secret.get_secret_value())
        if new["enabled"] and not new.get("token_url"):
            raise Invalid(
                "Give the external server's token URL to turn this mode on.", [{"field": "token_url"}]
            )
        await write_setting(s, SETTINGS_KEY, new)
        await audit(
            s,
            ctx,
            "external_auth.changed",
            actor_id=actor.user_id,
            enabled=new["enabled"],
            url=new["token_url"],
        )
    deps.external = ExternalAuth()  # new settings, fresh circuit
    return _public(deps, new)


def _client_auth(deps: AuthDeps, stored: dict[str, Any]) -> tuple[str, str] | None:
    if not stored.get("client_id"):
        return None
    return stored["client_id"], deps.secrets.decrypt(stored.get("client_secret_enc") or "")


async def _token_call(
    deps: AuthDeps, stored: dict[str, Any], form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = await deps.external.upstream(stored).request(
        "POST", stored["token_url"], data=form, auth=_client_auth(deps, stored)
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def _refused_grant(status: int, body: dict[str, Any]) -> bool:
    return status in (400, 401) and body.get("error") in ("invalid_grant", "invalid_request", None)


# ---- signing in ----------------------------------------------------------------------------------


async def enabled_settings(deps: AuthDeps) -> dict[str, Any] | None:
    async with deps.db.session() as s:
        stored = await stored_settings(s)
    return stored if stored.get("enabled") and stored.get("token_url") else None


async def external_login(
    deps: AuthDeps,
    ctx: Ctx,
    stored: dict[str, Any],
    login_name: str,
    password: str,
    remember_me: bool,
    row: UserRow | None,
    refuse: Any,
) -> TokenPair:
    """Sign in through the external server; `refuse()` raises the login's "wrong password" answer."""
    try:
        status, body = await _token_call(
            deps,
            stored,
            {
                "grant_type": "password",
                "username": login_name,
                "password": password,
                "scope": stored.get("scope", ""),
            },
        )
    except (Unavailable, Timeout) as exc:
        raise type(exc)(
            exc.message + " Administrators can still sign in with their local password.", exc.details
        ) from None
    if status != 200 or not body.get("access_token"):
        if _refused_grant(status, body):
            await refuse("external_refused")
        raise Unavailable(
            f"{EXTERNAL_SERVER} refused Atrium's request ({body.get('error') or status}); an administrator must check the "
            "external authentication settings.",
            {"reason": "upstream_refused"},
        )
    if row is None:
        if "@" not in login_name or not stored.get("create_users", True):
            await refuse("external_no_account")
        async with deps.db.transaction() as s:
            row = await create_passwordless_account(s, deps, ctx, login_name, None, via="external")
        await deps.outbox.flush()
    if not row.is_active:
        await refuse("inactive")
    session_id = uuid.uuid4()
    pair = await open_session(
        deps, ctx, row, remember_me=remember_me, method="external", session_id=session_id
    )
    async with deps.db.transaction() as s:
        await s.execute(
            insert(external_tokens).values(session_id=session_id, user_id=row.id, **_sealed(deps, body))
        )
    return pair


def _sealed(deps: AuthDeps, body: dict[str, Any], old_refresh_enc: str | None = None) -> dict[str, Any]:
    expires_in = body.get("expires_in")
    ttl = int(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 3600
    refresh = body.get("refresh_token")
    return {
        "access_enc": deps.secrets.encrypt(str(body["access_token"])),
        "refresh_enc": deps.secrets.encrypt(str(refresh)) if refresh else old_refresh_enc,
        "expires_at": now() + timedelta(seconds=ttl),
    }


# ---- keeping the tokens fresh ---------------------------------------------------------------------


def _buffer(deps: AuthDeps, stored: dict[str, Any]) -> timedelta:
    return timedelta(seconds=stored.get("refresh_buffer_s") or deps.config.token_refresh_buffer_s)


async def _refresh(s: AsyncSession, deps: AuthDeps, stored: dict[str, Any], row: Any) -> Refreshed:
    """Refresh the locked `row` inside the caller's transaction."""
    if not row.refresh_enc:
        return Refreshed.FAILED
    try:
        status, body = await _token_call(
            deps,
            stored,
            {"grant_type": "refresh_token", "refresh_token": deps.secrets.decrypt(row.refresh_enc)},
        )
    except AtriumError as exc:
        await _note_failure(s, row.session_id, exc.message)
        return Refreshed.FAILED
    if status == 200 and body.get("access_token"):
        await s.execute(
            update(external_tokens)
            .where(external_tokens.c.session_id == row.session_id)
            .values(**_sealed(deps, body, row.refresh_enc), refreshed_at=now(), failures=0, last_error=None)
        )
        return Refreshed.OK
    if _refused_grant(status, body):
        ctx = Ctx(request_id="")
        await s.execute(delete(external_tokens).where(external_tokens.c.session_id == row.session_id))
        await end_sessions(s, deps, ctx, [row.session_id], "external_refused", target_id=row.user_id)
        await audit(
            s, ctx, "external_auth.refresh_refused", target_id=row.user_id, session_id=str(row.session_id)
        )
        return Refreshed.REFUSED
    await _note_failure(
        s, row.session_id, f"{EXTERNAL_SERVER} answered {status} {body.get('error') or ''}".strip()
    )
    return Refreshed.FAILED


async def _note_failure(s: AsyncSession, session_id: UUID, message: str) -> None:
    await s.execute(
        update(external_tokens)
        .where(external_tokens.c.session_id == session_id)
        .values(failures=external_tokens.c.failures + 1, last_error=message[:300])
    )


async def refresh_due(deps: AuthDeps) -> int:
    """The loop: refresh every stored token that expires within the buffer; returns how many were refreshed.
    Rows another refresher holds are skipped (it is refreshing them)."""
    stored = await enabled_settings(deps)
    if stored is None:
        return 0
    soon = now() + _buffer(deps, stored)
    async with deps.db.session() as s:
        due = list(
            (
                await s.execute(
                    select(external_tokens.c.session_id)
                    .where(external_tokens.c.expires_at <= soon, external_tokens.c.refresh_enc.is_not(None))
                    .order_by(external_tokens.c.expires_at)
                    .limit(BATCH)
                )
            ).scalars()
        )
    done = 0
    for session_id in due:
        async with deps.db.transaction() as s:
            row = (
                await s.execute(
                    select(external_tokens)
                    .where(external_tokens.c.session_id == session_id)
                    .with_for_update(skip_locked=True)
                )
            ).one_or_none()
            if row is None or row.expires_at > now() + _buffer(deps, stored):
                continue  # refreshed meanwhile, or being refreshed
            done += (await _refresh(s, deps, stored, row)) is Refreshed.OK
    return done


async def external_token(_: Empty, ctx: Ctx, deps: AuthDeps) -> ExternalAccessToken:
    actor = ctx.require_actor()
    stored = await enabled_settings(deps) or {}
    async with deps.db.transaction() as s:
        row = (
            await s.execute(
                select(external_tokens)
                .join(sessions, sessions.c.id == external_tokens.c.session_id)
                .where(
                    external_tokens.c.session_id == UUID(actor.session_id), sessions.c.revoked_at.is_(None)
                )
                .with_for_update(of=external_tokens)
            )
        ).one_or_none()
        if row is None:
            raise NotFound(
                "This session did not sign in through the external server; it holds no token of it."
            )
        outcome = Refreshed.OK
        if stored and row.expires_at <= now() + _buffer(deps, stored):
            outcome = await _refresh(s, deps, stored, row)
            row = (
                await s.execute(select(external_tokens).where(external_tokens.c.session_id == row.session_id))
            ).one_or_none()
    if outcome is Refreshed.REFUSED or row is None:
        raise Unauthenticated(
            f"{EXTERNAL_SERVER} ended this session; sign in again.", {"reason": "external_refused"}
        )
    if row.expires_at <= now():
        raise Unavailable(
            f"{EXTERNAL_SERVER} could not refresh the token ({row.last_error}); try again later."
        )
    return ExternalAccessToken(access_token=deps.secrets.decrypt(row.access_enc), expires_at=row.expires_at)
