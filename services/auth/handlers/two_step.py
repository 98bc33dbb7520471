"""The second step of a sign-in. When the password was right and the account has a second factor (or
signs in with one), login answers 401 with `details.reason = "second_factor_required"`, a short-lived
single-use `step_token` (only its SHA-256 stored) and the methods the account can use; the client then
sends the token with a TOTP code, a recovery code or a passkey assertion to `auth.session.second_step`.

The step is limited like login (per IP, and failures per account), and one step token takes at most
`MAX_ATTEMPTS` tries. A code is spent when accepted, so the same TOTP code does not pass twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, NoReturn

from sqlalchemy import insert, select, update

from contracts import Unauthenticated
from contracts.auth import TokenPair
from contracts.identity import SECOND_FACTOR_REQUIRED, SecondStep
from services.kit.context import Ctx

from .. import tokens
from ..rows import UserRow
from ..tables import login_challenges
from .common import AuthDeps, account_client_key, account_key, audit, client_key, now, user_by_id
from .factors import Factors
from .passkeys import assertion_options, verify_assertion
from .second_factor import consume_code
from .signin import SignInMethod, count_failed_signin, counting_lockouts, open_session

STEP_TTL_S = 300
MAX_ATTEMPTS = 5
STEP_PURPOSE = "second_step"
STEP_EXPIRED = "This sign-in step has expired or was used up; sign in again with your password."
WRONG_PROOF = "The code or passkey was not accepted; try again, or use a recovery code."


async def require_second_step(
    deps: AuthDeps, ctx: Ctx, row: UserRow, found: Factors, *, remember_me: bool
) -> NoReturn:
    """Record a second-step challenge for `row` and answer the login with it."""
    step_token = tokens.new_action_token()
    extra: dict[str, Any] = {}
    challenge: bytes | None = None
    if found.passkeys:
        challenge, extra["passkey_options"] = await assertion_options(deps, row.id)
    async with deps.db.transaction() as s:
        await s.execute(
            insert(login_challenges).values(
                id=uuid.uuid4(),
                user_id=row.id,
                purpose=STEP_PURPOSE,
                token_hash=tokens.hash_token(step_token),
                challenge=challenge,
                remember_me=remember_me,
                expires_at=now() + timedelta(seconds=STEP_TTL_S),
            )
        )
        await audit(s, ctx, "login.second_factor_asked", target_id=row.id, methods=found.methods())
    raise Unauthenticated(
        "The password is right; confirm the sign-in with your second factor.",
        {
            "reason": SECOND_FACTOR_REQUIRED,
            "step_token": step_token,
            "methods": found.methods(),
            "expires_in": STEP_TTL_S,
            **extra,
        },
    )


async def second_step(cmd: SecondStep, ctx: Ctx, deps: AuthDeps) -> TokenPair:
    with counting_lockouts():
        await deps.limiter.take("login_ip", client_key(ctx))
    async with deps.db.transaction() as s:
        step = (
            await s.execute(
                select(login_challenges)
                .where(
                    login_challenges.c.token_hash == tokens.hash_token(cmd.step_token.get_secret_value()),
                    login_challenges.c.purpose == STEP_PURPOSE,
                )
                .with_for_update()
            )
        ).one_or_none()
        if (
            step is None
            or step.used_at is not None
            or step.expires_at <= now()
            or step.attempts >= MAX_ATTEMPTS
        ):
            raise Unauthenticated(STEP_EXPIRED, {"reason": "step_expired"})
        row = await user_by_id(s, step.user_id)
        if row is None or not row.is_active:
            raise Unauthenticated(STEP_EXPIRED, {"reason": "step_expired"})
        # Counted like wrong passwords: this client is refused for the account after a few (the step also
        # allows only MAX_ATTEMPTS), and every failure slows sign-ins to the account down.
        key = account_key(row, row.email)
        with counting_lockouts():
            await deps.limiter.check("login_client", account_client_key(key, ctx))
        method: SignInMethod | None = None
        if cmd.method in ("totp", "recovery") and cmd.code:
            used = await consume_code(s, deps, row.id, cmd.code)  # either kind, whichever was chosen
            if used is not None:
                method = "password+totp" if used == "totp" else "password+recovery"
        elif cmd.method == "passkey" and cmd.credential and step.challenge:
            if await verify_assertion(s, deps, cmd.credential, step.challenge, user_id=row.id) is not None:
                method = "password+passkey"
        if method is None:
            await deps.limiter.hit("login_client", account_client_key(key, ctx))
            await deps.limiter.hit("login_account", key)
            await s.execute(
                update(login_challenges)
                .where(login_challenges.c.id == step.id)
                .values(attempts=login_challenges.c.attempts + 1)
            )
            await audit(s, ctx, "login.failed", target_id=row.id, reason="second_factor", method=cmd.method)
            failure: Unauthenticated | None = Unauthenticated(
                WRONG_PROOF,
                {"reason": "wrong_second_factor", "attempts_left": MAX_ATTEMPTS - step.attempts - 1},
            )
        else:
            failure = None
            await s.execute(
                update(login_challenges).where(login_challenges.c.id == step.id).values(used_at=now())
            )
    if failure is not None:  # raised after the commit, so the attempt counts
        count_failed_signin("second_factor")
        raise failure
    assert method is not None
    return await open_session(deps, ctx, row, remember_me=step.remember_me, method=method)
