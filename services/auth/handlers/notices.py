"""Mails that tell an account's owner about a change they should know of: their password or address
changed, a sign-in from a device not seen before, a second factor turned off. Each names what
happened, when and from where, and what to do if it was not them. Sent after the change committed."""

from __future__ import annotations

from datetime import datetime

from services.kit.context import Ctx

from .common import AuthDeps, now

NOT_YOU = (
    "If this was not you, reset your password at once ({url}/forgot-password) and review the sessions "
    "and second factors on your Security page ({url}/security)."
)


def _where(ctx: Ctx, device: str | None = None, at: datetime | None = None) -> str:
    when = (at or now()).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"When: {when}"]
    if device:
        parts.append(f"Device: {device}")
    if ctx.client_ip:
        parts.append(f"IP address: {ctx.client_ip}")
    return "\n".join(parts)


async def _send(
    deps: AuthDeps, to: str, subject: str, what: str, ctx: Ctx, device: str | None = None
) -> None:
    body = f"{what}\n\n{_where(ctx, device)}\n\n{NOT_YOU.format(url=deps.config.public_url)}\n"
    await deps.mailer.send(to, subject, body)


async def password_changed(deps: AuthDeps, ctx: Ctx, to: str) -> None:
    await _send(
        deps, to, "Your Atrium password was changed", "The password of your Atrium account was changed.", ctx
    )


async def email_changed(deps: AuthDeps, ctx: Ctx, old: str, new: str) -> None:
    await _send(
        deps,
        old,
        "Your Atrium email address was changed",
        f"Your Atrium account now uses {new} instead of this address; mails about it go there.",
        ctx,
    )


async def new_device(deps: AuthDeps, ctx: Ctx, to: str, device: str | None) -> None:
    await _send(
        deps,
        to,
        "New sign-in to your Atrium account",
        "Your Atrium account was signed in to from a device it had not been used on before.",
        ctx,
        device,
    )


async def second_factor_off(deps: AuthDeps, ctx: Ctx, to: str, what: str) -> None:
    await _send(
        deps,
        to,
        "Two-step sign-in was turned off for your Atrium account",
        what,
        ctx,
    )
