"""Personal access tokens: created (shown once, only the SHA-256 kept), listed, revoked, and exchanged.

Services verify nothing but access JWTs, so a personal access token never reaches them: the gateway
exchanges it here (`auth.pat.exchange`) for a short-lived access JWT that carries the token's scopes and
apps and has the token's id as its session id. Revoking writes `session.<token id>` to `auth_state`, so
every service refuses the JWTs already minted on the next request; an expired, revoked or deactivated
account's token is refused here. Every exchange records the last use (time and IP); an admin-scoped
token is exchanged for each request and each use is audited.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

from sqlalchemy import insert, select, update

from contracts import Empty, Invalid, NotFound, Unauthenticated
from contracts.auth import Ack
from contracts.identity import (
    APP_SERVICES,
    PAT_PREFIX,
    PAT_SCOPES,
    PatAccess,
    PatCreate,
    PatCreated,
    PatExchange,
    PatInfo,
    PatList,
    PatRef,
)
from services.kit.audit import client_ip
from services.kit.context import Ctx

from .. import tokens
from ..rows import AccessTokenRow
from ..tables import access_tokens
from .common import AuthDeps, audit, client_key, now, user_by_id
from .factors import factors_of_user

AUDITED_TTL_S = 60  # an admin-scoped token's access JWT is minted for one request
BAD_TOKEN = "This access token is not valid (unknown, expired or revoked); create a new one."


def _info(r: AccessTokenRow) -> PatInfo:
    return PatInfo(
        id=r.id,
        name=r.name,
        prefix=r.prefix,
        scopes=r.scopes,
        apps=r.apps,
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
        last_used_at=r.last_used_at,
        last_used_ip=str(r.last_used_ip) if r.last_used_ip else None,
    )


async def create_token(cmd: PatCreate, ctx: Ctx, deps: AuthDeps) -> PatCreated:
    actor = ctx.require_actor()
    scopes = [s for s in PAT_SCOPES if s in cmd.scopes]
    apps = sorted(set(cmd.apps)) if cmd.apps is not None else None
    unknown = sorted(set(apps or ()) - set(APP_SERVICES))
    if unknown:
        raise Invalid(
            f"Unknown app(s): {', '.join(unknown)}; known: {', '.join(sorted(APP_SERVICES))}.",
            [{"field": "apps"}],
        )
    if apps == []:
        raise Invalid("Name at least one app, or leave the list out for every app.", [{"field": "apps"}])
    token = tokens.new_personal_token()
    async with deps.db.transaction() as s:
        user = await user_by_id(s, actor.user_id)
        if user is None:
            raise NotFound("This account no longer exists.")
        if "admin" in scopes and user.role != "admin":
            raise Invalid(
                "Only administrators can create a token with the admin scope.", [{"field": "scopes"}]
            )
        row = (
            await s.execute(
                insert(access_tokens)
                .values(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    name=cmd.name.strip(),
                    token_hash=tokens.hash_token(token),
                    prefix=token[: len(PAT_PREFIX) + 6],
                    scopes=scopes,
                    apps=apps,
                    expires_at=now() + timedelta(days=cmd.expires_in_days),
                )
                .returning(access_tokens)
            )
        ).one()
        await audit(
            s,
            ctx,
            "pat.created",
            actor_id=user.id,
            target_id=user.id,
            token_id=str(row.id),
            scopes=scopes,
            apps=apps,
        )
    return PatCreated(token=token, info=_info(row))


async def list_tokens(_: Empty, ctx: Ctx, deps: AuthDeps) -> PatList:
    actor = ctx.require_actor()
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(access_tokens)
                .where(access_tokens.c.user_id == actor.user_id)
                .order_by(access_tokens.c.created_at.desc())
            )
        ).all()
    return PatList(items=[_info(r) for r in rows])


async def revoke_token(cmd: PatRef, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        revoked = (
            await s.execute(
                update(access_tokens)
                .where(
                    access_tokens.c.id == cmd.token_id,
                    access_tokens.c.user_id == actor.user_id,
                    access_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now())
                .returning(access_tokens.c.id)
            )
        ).scalar_one_or_none()
        if revoked is None:  # another user's token looks exactly like a missing one
            raise NotFound("There is no live access token with this id among yours.")
        await audit(
            s,
            ctx,
            "pat.revoked",
            actor_id=actor.user_id,
            target_id=actor.user_id,
            token_id=str(revoked),
            sessions=[str(revoked)],  # what reconcile_state revokes if the bucket write was lost
        )
        await deps.state.revoke_sessions([revoked])
    return Ack(message="The access token is revoked; it is refused everywhere from now on.")


async def exchange_token(cmd: PatExchange, ctx: Ctx, deps: AuthDeps) -> PatAccess:
    await deps.limiter.take("refresh_ip", client_key(ctx))
    presented = cmd.token.get_secret_value()
    if not presented.startswith(PAT_PREFIX):
        raise Unauthenticated(BAD_TOKEN)
    at = now()
    async with deps.db.transaction() as s:
        row = (
            await s.execute(
                select(access_tokens).where(access_tokens.c.token_hash == tokens.hash_token(presented))
            )
        ).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= at:
            reason = "unknown" if row is None else ("revoked" if row.revoked_at else "expired")
            raise Unauthenticated(BAD_TOKEN, {"reason": reason})
        user = await user_by_id(s, row.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("This account is deactivated.", {"reason": "inactive"})
        await s.execute(
            update(access_tokens)
            .where(access_tokens.c.id == row.id)
            .values(last_used_at=at, last_used_ip=client_ip(ctx))
        )
        # The token carries whether the account has a second factor: where the policy asks for one,
        # every service refuses it until one is set up (as it refuses the account's sessions).
        second_factor = (await factors_of_user(s, user.id)).any
        audited = "admin" in row.scopes
        if audited:
            await audit(
                s,
                ctx,
                "pat.used",
                actor_id=user.id,
                target_id=user.id,
                token_id=str(row.id),
                purpose=cmd.purpose,
            )
    await deps.state.sync_user(user.id, role=user.role, active=user.is_active)
    left = math.floor((row.expires_at - at).total_seconds())
    ttl = max(1, min(AUDITED_TTL_S if audited else deps.config.access_ttl_s, left))
    access = tokens.issue_access_token(
        deps.keys,
        user_id=user.id,
        role=user.role,
        session_id=row.id,
        ttl_s=ttl,
        scopes=list(row.scopes),
        apps=list(row.apps) if row.apps is not None else None,
        second_factor=second_factor,
    )
    return PatAccess(access_token=access, expires_in=ttl, audited=audited)
