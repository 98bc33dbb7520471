"""Single sign-on with OpenID Connect providers an administrator configures ("Sign in with …").

The authorization code flow with PKCE (S256): `auth.sso.start` records the state, nonce and code verifier
(encrypted) in a single-use `login_challenges` row keyed by the state's SHA-256 and answers the provider's
authorization URL; `auth.sso.finish` takes that row by the returned state, exchanges the code, verifies the
ID token against the provider's JWKS (signature, issuer, audience, expiry, nonce — `oidc.py`), and signs in
the account linked to the provider's subject — or links one by its verified email, or creates one just in
time, as the provider's settings allow. A groups claim can set the user's membership of the Atrium groups
it is mapped to (`events.auth.sso_groups`, applied by the permissions service). The provider checks its own
second factors; Atrium does not ask for one after a single sign-on.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Empty, Forbidden, Invalid, NotFound, Unauthenticated
from contracts.auth import Ack, TokenPair
from contracts.identity import (
    SSO_GROUPS_CLAIMED,
    SsoButton,
    SsoButtons,
    SsoFinish,
    SsoGroupsClaimed,
    SsoProviderAdmin,
    SsoProviderList,
    SsoProviderRef,
    SsoProviderUpsert,
    SsoRedirect,
    SsoStart,
)
from services.kit.context import Ctx

from .. import tokens
from ..oidc import OidcClient, Pkce
from ..rows import SsoProviderRow, UserRow
from ..tables import login_challenges, sso_identities, sso_providers
from .accounts import create_passwordless_account
from .common import AuthDeps, audit, client_key, email_key, now, user_by_email, user_by_id
from .signin import open_session

FLOW_TTL_S = 600
PURPOSE = "sso"
NO_ACCOUNT = (
    "No Atrium account is linked to this sign-in, and this provider may not create one; ask an administrator."
)


def redirect_uri(deps: AuthDeps, provider_id: str) -> str:
    """Where the provider sends the browser back: the web app's page, which finishes the sign-in."""
    return f"{deps.config.public_url}/sso/{provider_id}/callback"


def _admin_view(deps: AuthDeps, r: SsoProviderRow) -> SsoProviderAdmin:
    return SsoProviderAdmin(
        id=r.id,
        label=r.label,
        issuer=r.issuer,
        client_id=r.client_id,
        scopes=r.scopes,
        link_by_email=r.link_by_email,
        create_users=r.create_users,
        groups_claim=r.groups_claim,
        group_map={k: uuid.UUID(str(v)) for k, v in r.group_map.items()},
        enabled=r.enabled,
        client_secret_set=bool(r.client_secret_enc),
        redirect_uri=redirect_uri(deps, r.id),
    )


def _client(deps: AuthDeps, provider: SsoProviderRow) -> OidcClient:
    return deps.oidc.for_issuer(provider.issuer, provider.label)


async def _provider(s: AsyncSession, provider_id: str, *, enabled_only: bool = True) -> SsoProviderRow:
    row = (await s.execute(select(sso_providers).where(sso_providers.c.id == provider_id))).one_or_none()
    if row is None or (enabled_only and not row.enabled):
        raise NotFound(f"There is no single sign-on provider {provider_id!r}.")
    return row


# ---- administration -----------------------------------------------------------------------------


async def list_providers(_: Empty, ctx: Ctx, deps: AuthDeps) -> SsoProviderList:
    async with deps.db.session() as s:
        rows = (await s.execute(select(sso_providers).order_by(sso_providers.c.label))).all()
    return SsoProviderList(items=[_admin_view(deps, r) for r in rows])


async def upsert_provider(cmd: SsoProviderUpsert, ctx: Ctx, deps: AuthDeps) -> SsoProviderAdmin:
    actor = ctx.require_actor()
    issuer = cmd.issuer.rstrip("/")
    if cmd.groups_claim is None and cmd.group_map:
        raise Invalid("Name the groups claim the group map reads.", [{"field": "groups_claim"}])
    deps.oidc.forget(issuer)
    await deps.oidc.for_issuer(issuer, cmd.label).discover()  # a wrong issuer is found now, not at sign-in
    values: dict[str, Any] = {
        "label": cmd.label.strip(),
        "issuer": issuer,
        "client_id": cmd.client_id,
        "scopes": " ".join(dict.fromkeys(["openid", *cmd.scopes.split()])),
        "link_by_email": cmd.link_by_email,
        "create_users": cmd.create_users,
        "groups_claim": cmd.groups_claim,
        "group_map": {k: str(v) for k, v in cmd.group_map.items()},
        "enabled": cmd.enabled,
        "updated_at": now(),
    }
    if cmd.client_secret is not None:
        values["client_secret_enc"] = deps.secrets.encrypt(cmd.client_secret.get_secret_value())
    async with deps.db.transaction() as s:
        row = (
            await s.execute(
                pg_insert(sso_providers)
                .values(id=cmd.id, **values)
                .on_conflict_do_update(index_elements=[sso_providers.c.id], set_=values)
                .returning(sso_providers)
            )
        ).one()
        if not row.client_secret_enc:
            raise Invalid("Give the client secret the provider issued.", [{"field": "client_secret"}])
        await audit(s, ctx, "sso.provider_saved", actor_id=actor.user_id, provider=cmd.id, issuer=issuer)
    return _admin_view(deps, row)


async def delete_provider(cmd: SsoProviderRef, ctx: Ctx, deps: AuthDeps) -> Ack:
    actor = ctx.require_actor()
    async with deps.db.transaction() as s:
        gone = (
            await s.execute(
                delete(sso_providers).where(sso_providers.c.id == cmd.id).returning(sso_providers.c.issuer)
            )
        ).scalar_one_or_none()
        if gone is None:
            raise NotFound(f"There is no single sign-on provider {cmd.id!r}.")
        await s.execute(delete(sso_identities).where(sso_identities.c.provider_id == cmd.id))
        await audit(s, ctx, "sso.provider_deleted", actor_id=actor.user_id, provider=cmd.id)
    deps.oidc.forget(gone)
    return Ack(message="The provider is removed; its sign-in button is gone.")


# ---- signing in ---------------------------------------------------------------------------------


async def buttons(_: Empty, ctx: Ctx, deps: AuthDeps) -> SsoButtons:
    async with deps.db.session() as s:
        rows = (
            await s.execute(
                select(sso_providers.c.id, sso_providers.c.label)
                .where(sso_providers.c.enabled)
                .order_by(sso_providers.c.label)
            )
        ).all()
    return SsoButtons(items=[SsoButton(id=r.id, label=r.label) for r in rows])


async def start(cmd: SsoStart, ctx: Ctx, deps: AuthDeps) -> SsoRedirect:
    await deps.limiter.take("login_ip", client_key(ctx))
    async with deps.db.session() as s:
        provider = await _provider(s, cmd.provider)
    state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), Pkce.new()
    url = await _client(deps, provider).authorization_url(
        client_id=provider.client_id,
        redirect_uri=redirect_uri(deps, provider.id),
        scopes=provider.scopes,
        state=state,
        nonce=nonce,
        pkce=pkce,
    )
    flow = json.dumps({"provider": provider.id, "nonce": nonce, "verifier": pkce.verifier})
    async with deps.db.transaction() as s:
        await s.execute(
            insert(login_challenges).values(
                id=uuid.uuid4(),
                purpose=PURPOSE,
                token_hash=tokens.hash_token(state),
                challenge=deps.secrets.encrypt(flow).encode(),
                remember_me=cmd.remember_me,
                expires_at=now() + timedelta(seconds=FLOW_TTL_S),
            )
        )
    return SsoRedirect(authorization_url=url)


async def finish(cmd: SsoFinish, ctx: Ctx, deps: AuthDeps) -> TokenPair:
    await deps.limiter.take("login_ip", client_key(ctx))
    async with deps.db.transaction() as s:  # the state is spent whatever happens next
        flow_row = (
            await s.execute(
                update(login_challenges)
                .where(
                    login_challenges.c.token_hash == tokens.hash_token(cmd.state),
                    login_challenges.c.purpose == PURPOSE,
                    login_challenges.c.used_at.is_(None),
                    login_challenges.c.expires_at > now(),
                )
                .values(used_at=now())
                .returning(login_challenges.c.challenge, login_challenges.c.remember_me)
            )
        ).one_or_none()
    flow = json.loads(deps.secrets.decrypt(flow_row.challenge.decode()) or "{}") if flow_row else {}
    if flow.get("provider") != cmd.provider:
        raise Unauthenticated(
            "This single sign-on is unknown, expired or already finished; start again.", {"reason": "state"}
        )
    async with deps.db.session() as s:
        provider = await _provider(s, cmd.provider)
    client = _client(deps, provider)
    secret = deps.secrets.decrypt(provider.client_secret_enc or "")
    try:
        answer = await client.exchange_code(
            code=cmd.code,
            redirect_uri=redirect_uri(deps, provider.id),
            client_id=provider.client_id,
            client_secret=secret,
            verifier=flow["verifier"],
        )
        claims = await client.verify_id_token(
            answer["id_token"], client_id=provider.client_id, nonce=flow["nonce"]
        )
    except Unauthenticated as exc:
        async with deps.db.transaction() as s:
            reason = exc.details.get("reason") if isinstance(exc.details, dict) else None
            await audit(s, ctx, "login.failed", reason=f"sso:{reason}", provider=provider.id)
        raise
    user = await _account_for(deps, ctx, provider, claims)
    return await open_session(deps, ctx, user, remember_me=flow_row.remember_me, method="sso")  # type: ignore[union-attr]


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    return email_key(email) if isinstance(email, str) and "@" in email and verified else None


async def _account_for(deps: AuthDeps, ctx: Ctx, provider: SsoProviderRow, claims: dict[str, Any]) -> UserRow:
    subject = str(claims["sub"])[:255]
    email = _verified_email(claims)
    async with deps.db.transaction() as s:
        linked = (
            await s.execute(
                select(sso_identities.c.user_id).where(
                    sso_identities.c.provider_id == provider.id, sso_identities.c.subject == subject
                )
            )
        ).scalar_one_or_none()
        user = await user_by_id(s, linked) if linked is not None else None
        how = "linked"
        if user is None and email and provider.link_by_email:
            user, how = await user_by_email(s, email), "by_email"
        if user is None and email and provider.create_users:
            user, how = (
                await create_passwordless_account(s, deps, ctx, email, claims.get("name"), via="sso"),
                "created",
            )
        if user is None:
            await audit(s, ctx, "login.failed", reason="sso:no_account", provider=provider.id, email=email)
            failure: Exception | None = Forbidden(NO_ACCOUNT, {"reason": "no_account"})
        elif not user.is_active:
            await audit(s, ctx, "login.failed", target_id=user.id, reason="inactive", provider=provider.id)
            failure = Unauthenticated("This account is deactivated.", {"reason": "inactive"})
        else:
            failure = None
            await s.execute(
                pg_insert(sso_identities)
                .values(
                    provider_id=provider.id,
                    subject=subject,
                    user_id=user.id,
                    email=email,
                    last_login_at=now(),
                )
                .on_conflict_do_update(
                    index_elements=[sso_identities.c.provider_id, sso_identities.c.subject],
                    set_={"last_login_at": now(), "email": email},
                )
            )
            if how != "linked":
                await audit(
                    s,
                    ctx,
                    "sso.identity_linked",
                    actor_id=user.id,
                    target_id=user.id,
                    provider=provider.id,
                    how=how,
                )
            await _claim_groups(s, deps, provider, user, claims)
    if failure is not None:
        raise failure
    assert user is not None
    await deps.outbox.flush()
    return user


async def _claim_groups(
    s: AsyncSession, deps: AuthDeps, provider: SsoProviderRow, user: UserRow, claims: dict[str, Any]
) -> None:
    if not provider.groups_claim or not provider.group_map:
        return
    claimed = claims.get(provider.groups_claim) or []
    values = [claimed] if isinstance(claimed, str) else [str(v) for v in claimed if isinstance(v, str | int)]
    member_of = sorted({uuid.UUID(str(provider.group_map[v])) for v in values if v in provider.group_map})
    managed = sorted({uuid.UUID(str(g)) for g in provider.group_map.values()})
    at = now()
    await deps.outbox.enqueue(
        s,
        SSO_GROUPS_CLAIMED,
        SsoGroupsClaimed(
            user_id=user.id, provider=provider.id, member_of=member_of, managed=managed, claimed_at=at
        ),
        msg_id=f"sso_groups:{user.id}:{at.timestamp()}",
    )
