"""What second factors an account has, what the security policy asks of it, and the account as the
signed-in person sees it (with those two facts). Read by sign-in, the Security page and the admin list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Conflict
from contracts.auth import UserPublic
from contracts.identity import LAST_SECOND_FACTOR, SecondFactorMethod, SecurityPolicy
from services.kit.db import Database, Prepared

from ..rows import UserRow
from ..tables import auth_settings, passkeys, recovery_codes, totp_factors, users
from .common import user_public

POLICY_KEY = "security_policy"


@dataclass(frozen=True)
class Factors:
    totp: bool = False
    passkeys: int = 0
    recovery_codes_left: int = 0

    @property
    def any(self) -> bool:
        return self.totp or self.passkeys > 0

    def methods(self) -> list[SecondFactorMethod]:
        found: list[SecondFactorMethod] = []
        if self.totp:
            found.append("totp")
        if self.passkeys:
            found.append("passkey")
        if self.any and self.recovery_codes_left:
            found.append("recovery")
        return found


async def factors_of(s: AsyncSession, user_ids: Sequence[UUID]) -> dict[UUID, Factors]:
    if not user_ids:
        return {}
    totp = set(
        (
            await s.execute(
                select(totp_factors.c.user_id).where(
                    totp_factors.c.user_id.in_(user_ids), totp_factors.c.confirmed_at.is_not(None)
                )
            )
        ).scalars()
    )
    counted = await s.execute(
        select(recovery_codes.c.user_id, func.count())
        .where(recovery_codes.c.user_id.in_(user_ids), recovery_codes.c.used_at.is_(None))
        .group_by(recovery_codes.c.user_id)
    )
    codes = {uid: n for uid, n in counted.all()}
    keys = await _passkey_counts(s, user_ids)
    return {
        uid: Factors(totp=uid in totp, passkeys=keys.get(uid, 0), recovery_codes_left=codes.get(uid, 0))
        for uid in user_ids
    }


async def _passkey_counts(s: AsyncSession, user_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = await s.execute(
        select(passkeys.c.user_id, func.count())
        .where(passkeys.c.user_id.in_(user_ids))
        .group_by(passkeys.c.user_id)
    )
    return {uid: n for uid, n in rows.all()}


async def factors_of_user(s: AsyncSession, user_id: UUID) -> Factors:
    return (await factors_of(s, [user_id]))[user_id]


# ---- the security policy --------------------------------------------------------------------------


async def read_setting(s: AsyncSession, key: str) -> dict[str, Any] | None:
    value = (
        await s.execute(select(auth_settings.c.value).where(auth_settings.c.key == key))
    ).scalar_one_or_none()
    return value if isinstance(value, dict) else None


async def write_setting(s: AsyncSession, key: str, value: dict[str, Any]) -> None:
    await s.execute(
        pg_insert(auth_settings)
        .values(key=key, value=value)
        .on_conflict_do_update(
            index_elements=[auth_settings.c.key], set_={"value": value, "updated_at": func.now()}
        )
    )


async def security_policy(s: AsyncSession) -> SecurityPolicy:
    stored = await read_setting(s, POLICY_KEY)
    return SecurityPolicy.model_validate(stored) if stored else SecurityPolicy()


def policy_requires(policy: SecurityPolicy, row: UserRow) -> bool:
    return policy.requires(row.role)


async def keep_a_required_factor(s: AsyncSession, row: UserRow, left: Factors) -> None:
    """Refuse removing the account's last second factor while the security policy requires one (call in the
    removal's transaction, after it, with the factors left): the session's access token would stay
    unrestricted until its next refresh. Another factor first, then this one can go."""
    if not left.any and policy_requires(await security_policy(s), row):
        raise Conflict(
            "The security policy requires a second factor for your account, and this is your last one: "
            "set up another (an authenticator app or a passkey) first, then remove this one.",
            {"reason": LAST_SECOND_FACTOR},
        )


async def account_views(s: AsyncSession, rows: Sequence[UserRow]) -> list[UserPublic]:
    """The accounts with their second-factor facts: set up, and required by the policy but missing."""
    found = await factors_of(s, [r.id for r in rows])
    policy = await security_policy(s)
    return [
        user_public(r).model_copy(
            update={
                "second_factor": found[r.id].any,
                "must_enrol_second_factor": policy_requires(policy, r) and not found[r.id].any,
            }
        )
        for r in rows
    ]


async def account_view(s: AsyncSession, row: UserRow) -> UserPublic:
    return (await account_views(s, [row]))[0]


# `me` on every page load: the user row, whether it has a second factor and the policy, in one prepared read.
_ACCOUNT_BY_ID = Prepared(
    select(
        users,
        or_(
            exists().where(totp_factors.c.user_id == users.c.id, totp_factors.c.confirmed_at.is_not(None)),
            exists().where(passkeys.c.user_id == users.c.id),
        ).label("has_second_factor"),
        select(auth_settings.c.value)
        .where(auth_settings.c.key == POLICY_KEY)
        .scalar_subquery()
        .label("security_policy"),
    ).where(users.c.id == bindparam("user_id"))
)


async def account_view_by_id(db: Database, user_id: UUID) -> UserPublic | None:
    """The account as `account_view` shows it, read with one prepared statement (None: no such account)."""
    row = await db.fetch_one(_ACCOUNT_BY_ID, user_id=user_id)
    if row is None:
        return None
    stored = row.security_policy
    policy = (
        SecurityPolicy.model_validate(stored) if isinstance(stored, dict) and stored else SecurityPolicy()
    )
    return user_public(row).model_copy(
        update={
            "second_factor": bool(row.has_second_factor),
            "must_enrol_second_factor": policy_requires(policy, row) and not row.has_second_factor,
        }
    )
