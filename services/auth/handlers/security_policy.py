"""The sign-in security policy an administrator sets: who must have a second factor. Accounts that lack
one are told so (`must_enrol_second_factor`) and led to the Security page by the web app; every service
refuses them anything but setting one up (`services.kit.security.enrolment_refusal`), as the policy is
published in `auth_state` and their access tokens say they have no second factor (claim `mfa`)."""

from __future__ import annotations

from contracts import Empty
from contracts.identity import SecurityPolicy
from services.kit.context import Ctx

from .common import AuthDeps, audit
from .factors import POLICY_KEY, security_policy, write_setting


async def get_policy(_: Empty, ctx: Ctx, deps: AuthDeps) -> SecurityPolicy:
    async with deps.db.session() as s:
        return await security_policy(s)


async def update_policy(cmd: SecurityPolicy, ctx: Ctx, deps: AuthDeps) -> SecurityPolicy:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        old = await security_policy(s)
        await write_setting(s, POLICY_KEY, cmd.model_dump())
        await audit(
            s, ctx, "policy.changed", actor_id=actor.user_id, old=old.second_factor, new=cmd.second_factor
        )
    await deps.state.put_policy(cmd)
    return cmd
