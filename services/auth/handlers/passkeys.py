"""Passkeys (WebAuthn, with the `webauthn` library): several per account, named and removable; a sign-in
with a passkey alone (a discoverable credential with user verification, no email or password), or a
passkey as the second factor after a password.

Each ceremony's challenge is a `login_challenges` row (`ceremony_id` goes to the browser with the
options and comes back with the result), used once and valid for `CEREMONY_TTL_S`. The relying party is
the host of `ATRIUM_PUBLIC_URL` and the only origin accepted is that URL's. An assertion whose signature
counter did not move forward (a cloned authenticator) is refused by the library.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, options_to_json_dict
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from contracts import Conflict, Empty, Invalid, NotFound, Unauthenticated
from contracts.auth import Ack, TokenPair
from contracts.identity import (
    PasskeyCeremony,
    PasskeyInfo,
    PasskeyList,
    PasskeyLogin,
    PasskeyLoginStart,
    PasskeyRegister,
    PasskeyRemove,
    PasskeyRename,
)
from services.kit.context import Ctx

from ..rows import ChallengeRow, PasskeyRow
from ..tables import login_challenges, passkeys
from . import notices
from .common import AuthDeps, audit, check_password_of, client_key, now, user_by_id
from .factors import factors_of_user, keep_a_required_factor
from .signin import count_failed_signin, counting_lockouts, open_session

CEREMONY_TTL_S = 300
RP_NAME = "Atrium"
NOT_ACCEPTED = "The passkey was not accepted; try again or sign in with your password."
CEREMONY_GONE = "This passkey request has expired or was already used; start again."


def _info(r: PasskeyRow) -> PasskeyInfo:
    return PasskeyInfo(
        id=r.id, name=r.name, created_at=r.created_at, last_used_at=r.last_used_at, backed_up=r.backed_up
    )


def _descriptor(r: PasskeyRow) -> PublicKeyCredentialDescriptor:
    transports = [
        AuthenticatorTransport(t) for t in r.transports if t in AuthenticatorTransport._value2member_map_
    ]
    return PublicKeyCredentialDescriptor(id=r.credential_id, transports=transports or None)


async def _passkeys_of(s: AsyncSession, user_id: UUID) -> list[PasskeyRow]:
    rows = await s.execute(
        select(passkeys).where(passkeys.c.user_id == user_id).order_by(passkeys.c.created_at)
    )
    return list(rows.all())


async def _new_ceremony(
    s: AsyncSession, purpose: str, challenge: bytes, *, user_id: UUID | None = None, remember_me: bool = False
) -> UUID:
    ceremony_id = uuid.uuid4()
    await s.execute(
        insert(login_challenges).values(
            id=ceremony_id,
            user_id=user_id,
            purpose=purpose,
            challenge=challenge,
            remember_me=remember_me,
            expires_at=now() + timedelta(seconds=CEREMONY_TTL_S),
        )
    )
    return ceremony_id


async def _take_ceremony(
    s: AsyncSession, ceremony_id: UUID, purpose: str, user_id: UUID | None = None
) -> ChallengeRow:
    row = (
        await s.execute(
            select(login_challenges)
            .where(login_challenges.c.id == ceremony_id, login_challenges.c.purpose == purpose)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now() or row.user_id != user_id:
        raise Unauthenticated(CEREMONY_GONE, {"reason": "ceremony_expired"})
    await s.execute(update(login_challenges).where(login_challenges.c.id == row.id).values(used_at=now()))
    return row


# ---- managing one's passkeys ------------------------------------------------------------------------


async def register_options(_: Empty, ctx: Ctx, deps: AuthDeps) -> PasskeyCeremony:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, actor.user_id)
        if user is None:
            raise NotFound("This account no longer exists.")
        options = generate_registration_options(
            rp_id=deps.config.webauthn_rp_id,
            rp_name=RP_NAME,
            user_id=user.id.bytes,
            user_name=user.username or user.email,
            user_display_name=user.full_name or user.username or user.email,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(r) for r in await _passkeys_of(s, user.id)],
        )
        ceremony = await _new_ceremony(s, "passkey_register", options.challenge, user_id=user.id)
    return PasskeyCeremony(ceremony_id=ceremony, options=options_to_json_dict(options))


async def register(cmd: PasskeyRegister, ctx: Ctx, deps: AuthDeps) -> PasskeyInfo:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        ceremony = await _take_ceremony(s, cmd.ceremony_id, "passkey_register", actor.user_id)
        assert ceremony.challenge is not None
        try:
            verified = verify_registration_response(
                credential=cmd.credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=deps.config.webauthn_rp_id,
                expected_origin=deps.config.webauthn_origin,
            )
        except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
            failure: Invalid | None = Invalid(
                f"The new passkey could not be verified ({exc}); try again.", [{"field": "credential"}]
            )
        else:
            failure = None
    if failure is not None:  # after the commit: the ceremony stays spent
        raise failure
    transports = (cmd.credential.get("response") or {}).get("transports") or []
    async with deps.db.transaction() as s:
        try:
            async with s.begin_nested():
                row = (
                    await s.execute(
                        insert(passkeys)
                        .values(
                            id=uuid.uuid4(),
                            user_id=actor.user_id,
                            credential_id=verified.credential_id,
                            public_key=verified.credential_public_key,
                            sign_count=verified.sign_count,
                            transports=[str(t) for t in transports][:10],
                            name=cmd.name.strip(),
                            aaguid=verified.aaguid or None,
                            backed_up=verified.credential_backed_up,
                        )
                        .returning(passkeys)
                    )
                ).one()
        except IntegrityError:
            raise Conflict("This passkey is already registered.") from None
        await audit(
            s, ctx, "passkey.added", actor_id=actor.user_id, target_id=actor.user_id, passkey_id=str(row.id)
        )
    return _info(row)


async def list_passkeys(_: Empty, ctx: Ctx, deps: AuthDeps) -> PasskeyList:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        return PasskeyList(items=[_info(r) for r in await _passkeys_of(s, actor.user_id)])


async def rename(cmd: PasskeyRename, ctx: Ctx, deps: AuthDeps) -> PasskeyInfo:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        row = (
            await s.execute(
                update(passkeys)
                .where(passkeys.c.id == cmd.passkey_id, passkeys.c.user_id == actor.user_id)
                .values(name=cmd.name.strip())
                .returning(passkeys)
            )
        ).one_or_none()
        if row is None:
            raise NotFound("There is no passkey with this id among yours.")
    return _info(row)


async def remove(cmd: PasskeyRemove, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        user = await user_by_id(s, actor.user_id)
    if user is None:
        raise NotFound("This account no longer exists.")
    await check_password_of(deps, user, cmd.password.get_secret_value(), ctx)
    async with deps.db.transaction() as s:
        gone = (
            await s.execute(
                delete(passkeys)
                .where(passkeys.c.id == cmd.passkey_id, passkeys.c.user_id == user.id)
                .returning(passkeys.c.name)
            )
        ).scalar_one_or_none()
        if gone is None:
            raise NotFound("There is no passkey with this id among yours.")
        left = await factors_of_user(s, user.id)
        await keep_a_required_factor(s, user, left)
        await audit(
            s, ctx, "passkey.removed", actor_id=user.id, target_id=user.id, passkey_id=str(cmd.passkey_id)
        )
    what = f"The passkey “{gone}” was removed from your Atrium account."
    if not left.any:
        what += " No second factor is left: your account is protected by its password alone."
    await notices.second_factor_off(deps, ctx, user.email, what)
    return Ack(message="The passkey is removed.")


# ---- signing in with a passkey --------------------------------------------------------------------


async def assertion_options(deps: AuthDeps, user_id: UUID) -> tuple[bytes, dict[str, Any]]:
    """A challenge and `navigator.credentials.get()` options for `user_id`'s passkeys (the second factor)."""
    async with deps.db.session() as s:
        own = await _passkeys_of(s, user_id)
    options = generate_authentication_options(
        rp_id=deps.config.webauthn_rp_id,
        allow_credentials=[_descriptor(r) for r in own],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options.challenge, options_to_json_dict(options)


async def verify_assertion(
    s: AsyncSession,
    deps: AuthDeps,
    credential: dict[str, Any],
    challenge: bytes,
    *,
    user_id: UUID | None,
    require_user_verification: bool = False,
) -> PasskeyRow | None:
    """The passkey that signed `challenge` (of `user_id`, when given), its counter moved on; else None."""
    try:
        raw_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id") or ""))
    except ValueError:
        return None
    row = (
        await s.execute(select(passkeys).where(passkeys.c.credential_id == raw_id).with_for_update())
    ).one_or_none()
    if row is None or (user_id is not None and row.user_id != user_id):
        return None
    handle = (credential.get("response") or {}).get("userHandle")
    try:
        if handle and base64url_to_bytes(str(handle)) != row.user_id.bytes:
            return None
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=deps.config.webauthn_rp_id,
            expected_origin=deps.config.webauthn_origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=require_user_verification,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        return None
    await s.execute(
        update(passkeys)
        .where(passkeys.c.id == row.id)
        .values(
            sign_count=verified.new_sign_count, last_used_at=now(), backed_up=verified.credential_backed_up
        )
    )
    return row


async def login_options(cmd: PasskeyLoginStart, ctx: Ctx, deps: AuthDeps) -> PasskeyCeremony:
    await deps.limiter.take("login_ip", client_key(ctx))
    options = generate_authentication_options(
        rp_id=deps.config.webauthn_rp_id, user_verification=UserVerificationRequirement.REQUIRED
    )
    async with deps.db.transaction() as s:
        ceremony = await _new_ceremony(s, "passkey_login", options.challenge, remember_me=cmd.remember_me)
    return PasskeyCeremony(ceremony_id=ceremony, options=options_to_json_dict(options))


async def login(cmd: PasskeyLogin, ctx: Ctx, deps: AuthDeps) -> TokenPair:
    with counting_lockouts():
        await deps.limiter.take("login_ip", client_key(ctx))
    async with deps.db.transaction() as s:
        ceremony = await _take_ceremony(s, cmd.ceremony_id, "passkey_login")
        assert ceremony.challenge is not None
        key = await verify_assertion(
            s, deps, cmd.credential, ceremony.challenge, user_id=None, require_user_verification=True
        )
        user = await user_by_id(s, key.user_id) if key is not None else None
        if key is None or user is None or not user.is_active:
            await audit(
                s,
                ctx,
                "login.failed",
                target_id=user.id if user else None,
                reason="passkey",
                method="passkey",
            )
    if key is None or user is None or not user.is_active:  # after the commit: the ceremony stays spent
        count_failed_signin("passkey")
        raise Unauthenticated(NOT_ACCEPTED, {"reason": "passkey_not_accepted"})
    return await open_session(deps, ctx, user, remember_me=ceremony.remember_me, method="passkey")
