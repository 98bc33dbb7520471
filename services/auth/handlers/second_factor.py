"""TOTP and recovery codes: enrolment (a secret and its QR code, confirmed by a first code; then ten
recovery codes, shown once), turning TOTP off and new recovery codes (both need the password and a code),
and the status the Security page shows. A code is consumed under a row lock, so the same code cannot
pass twice, however fast two requests race."""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict, Empty, Invalid, NotFound, Unauthenticated
from contracts.auth import Ack
from contracts.identity import (
    ConfirmedChange,
    RecoveryCodes,
    SecondFactorStatus,
    TotpCode,
    TotpEnrolment,
)
from services.kit.context import Ctx

from .. import totp
from ..rows import UserRow
from ..tables import recovery_codes, totp_factors
from . import notices
from .common import AuthDeps, audit, check_password_of, now, session_guess_key, user_by_id
from .factors import factors_of_user, keep_a_required_factor, policy_requires, security_policy

WRONG_CODE = "The code is wrong or was already used; wait for the next one from your app."

UsedCode = Literal["totp", "recovery"]


async def _me(s: AsyncSession, ctx: Ctx) -> UserRow:
    row = await user_by_id(s, ctx.require_actor().user_id)
    if row is None:
        raise NotFound("This account no longer exists.")
    return row


async def totp_start(_: Empty, ctx: Ctx, deps: AuthDeps) -> TotpEnrolment:
    async with deps.db.transaction() as s:
        row = await _me(s, ctx)
        confirmed = (
            await s.execute(
                select(totp_factors.c.confirmed_at).where(totp_factors.c.user_id == row.id).with_for_update()
            )
        ).scalar_one_or_none()
        if confirmed is not None:
            raise Conflict("An authenticator app is already set up; turn it off first to set up another.")
        secret = totp.new_secret()
        sealed = deps.secrets.encrypt(secret)
        await s.execute(
            pg_insert(totp_factors)
            .values(user_id=row.id, secret_enc=sealed)
            .on_conflict_do_update(
                index_elements=[totp_factors.c.user_id],
                set_={"secret_enc": sealed, "last_step": 0, "created_at": now()},
            )
        )
    uri = totp.otpauth_uri(secret, row.username or row.email)
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg_data_url(uri))


async def totp_confirm(cmd: TotpCode, ctx: Ctx, deps: AuthDeps) -> RecoveryCodes:
    async with deps.db.transaction() as s:
        row = await _me(s, ctx)
        await deps.limiter.check("password_session", session_guess_key(row, ctx))
        pending = (
            await s.execute(select(totp_factors).where(totp_factors.c.user_id == row.id).with_for_update())
        ).one_or_none()
        if pending is None or pending.confirmed_at is not None:
            raise Conflict("There is no authenticator app being set up; start again.")
        step = totp.accepted_step(deps.secrets.decrypt(pending.secret_enc), cmd.code, pending.last_step)
        if step is None:
            await deps.limiter.hit("password_session", session_guess_key(row, ctx))
            raise Invalid(WRONG_CODE, [{"field": "code"}])
        await s.execute(
            update(totp_factors)
            .where(totp_factors.c.user_id == row.id)
            .values(confirmed_at=now(), last_step=step)
        )
        codes = await _replace_recovery_codes(s, row.id)
        await audit(s, ctx, "totp.enabled", actor_id=row.id, target_id=row.id)
    return RecoveryCodes(codes=codes)


async def totp_disable(cmd: ConfirmedChange, ctx: Ctx, deps: AuthDeps) -> Ack:
    async with deps.db.session() as s:
        row = await _me(s, ctx)
    await check_password_of(deps, row, cmd.password.get_secret_value(), ctx)
    async with deps.db.transaction() as s:
        if not (await factors_of_user(s, row.id)).totp:
            raise Conflict("No authenticator app is set up.")
        await require_code(s, deps, ctx, row, cmd.code)
        await s.execute(delete(totp_factors).where(totp_factors.c.user_id == row.id))
        left = await factors_of_user(s, row.id)
        await keep_a_required_factor(s, row, left)
        if not left.any:
            await s.execute(delete(recovery_codes).where(recovery_codes.c.user_id == row.id))
        await audit(s, ctx, "totp.disabled", actor_id=row.id, target_id=row.id, factors_left=left.passkeys)
    what = "The authenticator app (TOTP) was removed from your Atrium account."
    if not left.any:
        what += " No second factor is left: your account is protected by its password alone."
    await notices.second_factor_off(deps, ctx, row.email, what)
    return Ack(message="The authenticator app is turned off." if left.any else "Two-step sign-in is off.")


async def regenerate_recovery_codes(cmd: ConfirmedChange, ctx: Ctx, deps: AuthDeps) -> RecoveryCodes:
    async with deps.db.session() as s:
        row = await _me(s, ctx)
    await check_password_of(deps, row, cmd.password.get_secret_value(), ctx)
    async with deps.db.transaction() as s:
        if not (await factors_of_user(s, row.id)).any:
            raise Conflict("Set up an authenticator app or a passkey first; recovery codes back one up.")
        await require_code(s, deps, ctx, row, cmd.code)
        codes = await _replace_recovery_codes(s, row.id)
        await audit(s, ctx, "recovery_codes.regenerated", actor_id=row.id, target_id=row.id)
    return RecoveryCodes(codes=codes)


async def status(_: Empty, ctx: Ctx, deps: AuthDeps) -> SecondFactorStatus:
    async with deps.db.session() as s:
        row = await _me(s, ctx)
        found = await factors_of_user(s, row.id)
        policy = await security_policy(s)
    return SecondFactorStatus(
        totp=found.totp,
        recovery_codes_left=found.recovery_codes_left,
        passkeys=found.passkeys,
        required=policy_requires(policy, row),
    )


# ---- checking a code ------------------------------------------------------------------------------


async def consume_code(s: AsyncSession, deps: AuthDeps, user_id: UUID, code: str) -> UsedCode | None:
    """Accept a TOTP code (a step later than the last accepted one) or an unused recovery code, and
    spend it, inside the caller's transaction; None when it is neither."""
    if totp.looks_like_totp(code):
        factor = (
            await s.execute(
                select(totp_factors)
                .where(totp_factors.c.user_id == user_id, totp_factors.c.confirmed_at.is_not(None))
                .with_for_update()
            )
        ).one_or_none()
        if factor is None:
            return None
        step = totp.accepted_step(deps.secrets.decrypt(factor.secret_enc), code, factor.last_step)
        if step is None:
            return None
        await s.execute(update(totp_factors).where(totp_factors.c.user_id == user_id).values(last_step=step))
        return "totp"
    spent = (
        await s.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == totp.hash_recovery_code(code),
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=now())
            .returning(recovery_codes.c.id)
        )
    ).scalar_one_or_none()
    return "recovery" if spent is not None else None


async def require_code(s: AsyncSession, deps: AuthDeps, ctx: Ctx, row: UserRow, code: str) -> UsedCode:
    """A code (TOTP or recovery) from the signed-in user; wrong ones are counted like wrong passwords."""
    key = session_guess_key(row, ctx)
    await deps.limiter.check("password_session", key)
    used = await consume_code(s, deps, row.id, code)
    if used is None:
        await deps.limiter.hit("password_session", key)
        raise Unauthenticated(WRONG_CODE, {"field": "code"})
    return used


async def _replace_recovery_codes(s: AsyncSession, user_id: UUID) -> list[str]:
    await s.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    codes = totp.new_recovery_codes()
    await s.execute(
        insert(recovery_codes),
        [{"id": uuid.uuid4(), "user_id": user_id, "code_hash": totp.hash_recovery_code(c)} for c in codes],
    )
    return codes
