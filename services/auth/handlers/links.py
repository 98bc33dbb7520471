"""Single-use links sent by mail: confirming an address ("verify") and resetting a password ("reset").
Only a link's SHA-256 is stored; using one marks it used."""

from __future__ import annotations

import uuid
from datetime import timedelta
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Invalid

from .. import tokens
from ..rows import LinkKind, LinkTokenRow
from ..tables import action_tokens
from .common import AuthDeps, now


async def new_link_token(
    s: AsyncSession, deps: AuthDeps, user_id: UUID, kind: LinkKind, new_email: str | None = None
) -> str:
    ttl = deps.config.reset_ttl_s if kind == "reset" else deps.config.verify_ttl_s
    token = tokens.new_action_token()
    await s.execute(
        insert(action_tokens).values(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind,
            token_hash=tokens.hash_token(token),
            new_email=new_email,
            expires_at=now() + timedelta(seconds=ttl),
        )
    )
    return token


async def take_link_token(s: AsyncSession, token: str, kind: LinkKind) -> LinkTokenRow:
    row = (
        await s.execute(
            select(action_tokens)
            .where(action_tokens.c.token_hash == tokens.hash_token(token), action_tokens.c.kind == kind)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now():
        what = "reset" if kind == "reset" else "verification"
        raise Invalid(
            f"This {what} link is invalid, used or expired; ask for a new one.", [{"field": "token"}]
        )
    await s.execute(update(action_tokens).where(action_tokens.c.id == row.id).values(used_at=now()))
    return row


async def invalidate_link_tokens(s: AsyncSession, user_id: UUID, kind: LinkKind) -> None:
    await s.execute(
        update(action_tokens)
        .where(
            action_tokens.c.user_id == user_id,
            action_tokens.c.kind == kind,
            action_tokens.c.used_at.is_(None),
        )
        .values(used_at=now())
    )


def link_to(deps: AuthDeps, page: str, token: str) -> str:
    """The mailed link: the token in the fragment, which browsers never send, so no proxy or server logs
    it and no Referer carries it (issue 13 item 15)."""
    return f"{deps.config.public_url}/{page}#token={token}"


async def mail_verification(deps: AuthDeps, to: str, token: str) -> None:
    link = link_to(deps, "verify-email", token)
    await deps.mailer.send(
        to,
        "Confirm your email address for Atrium",
        f"Open this link within 24 hours to confirm {to}:\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail.\n",
    )


async def mail_reset(deps: AuthDeps, to: str, token: str) -> None:
    link = link_to(deps, "reset-password", token)
    await deps.mailer.send(
        to,
        "Reset your Atrium password",
        f"Open this link within 30 minutes to choose a new password:\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail; your password stays as it is.\n",
    )


async def mail_known_address(deps: AuthDeps, to: str) -> None:
    """To an address that already has an account, when someone registers it or moves an account to it."""
    await deps.mailer.send(
        to,
        "You already have an Atrium account",
        f"Someone asked to create an Atrium account for {to}, or to move another account to this address, "
        "but you already have an account with it. Nothing has changed.\n\n"
        f"Sign in at {deps.config.public_url}/sign-in, or if you do not know the password (or never chose "
        f"one), set a new one at {deps.config.public_url}/forgot-password.\n\n"
        "If you did not ask for this, ignore this mail.\n",
    )
