"""`atrium admin …` and `atrium keys …`: the first administrator and the token signing keys.

`admin create` works against the stack of `--data`, running or not: it finds the auth database
(ATRIUM_DB_URL_AUTH, DATABASE_URL, the running embedded PostgreSQL, or starts it briefly) and, when
the stack is up, tells it over NATS so the change applies at once. The password comes from
ATRIUM_ADMIN_PASSWORD or a prompt — never from an argument, where it would land in shell history.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

admin_app = typer.Typer(help="Administer accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys (RSA 4096).", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="State directory of the stack")]


@admin_app.callback()
def admin_group() -> None:
    """Administer accounts (a group, so `admin create` stays a sub-command as more are added)."""


@asynccontextmanager
async def auth_database_url(data: Path) -> AsyncIterator[str]:
    from infra.embedded import EmbeddedPostgres, provision, running_pg_port
    from services.kit import migrations

    if os.environ.get("ATRIUM_DB_URL_AUTH"):
        yield os.environ["ATRIUM_DB_URL_AUTH"]
        return
    pg: EmbeddedPostgres | None = None
    if os.environ.get("DATABASE_URL"):
        admin_url = os.environ["DATABASE_URL"]
    elif (port := running_pg_port(data)) is not None:
        pg = EmbeddedPostgres(
            data, port=port, password=(data / "secrets" / "pg_superuser").read_text().strip()
        )
        admin_url, pg = pg.admin_url, None  # not ours to stop
    else:
        pg = EmbeddedPostgres(data).start()
        admin_url = pg.admin_url
    try:
        urls = await provision(admin_url, data)
        await migrations.upgrade("auth", urls["auth"], "auth")
        yield urls["auth"]
    finally:
        if pg is not None:
            pg.stop()


async def _connect_nats(data: Path) -> Any:
    """The running stack's NATS, or None (the admin still works; the stack learns at its next login)."""
    import nats

    from infra.cli import nats_options
    from infra.devstack import read_stack_info
    from services.kit.config import nats_servers

    url = os.environ.get("NATS_URL") or (read_stack_info(data) or {}).get("nats_url")
    if not url:
        return None
    try:
        return await nats.connect(
            nats_servers(url),
            connect_timeout=2,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            **nats_options(data, url),
        )
    except Exception:
        return None


async def _create_admin(email: str, password: str, data: Path, take_over: bool = False) -> str:
    from services.auth.admin import ensure_admin
    from services.kit.db import Database

    nc = await _connect_nats(data)
    try:
        async with auth_database_url(data) as url:
            db = Database(url, "auth")
            try:
                result = await ensure_admin(db, email, password, nc=nc, take_over=take_over)
            finally:
                await db.dispose()
    finally:
        if nc is not None:
            await nc.close()
    return {
        "created": f"Created administrator {result.email}.",
        "promoted": f"{result.email} is now an active administrator.",
        "taken_over": f"{result.email} is now an active administrator with the new password; "
        "every session it had has ended.",
        "unchanged": f"{result.email} already is an active administrator; nothing changed.",
    }[result.outcome]


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option("--email", help="Email of the administrator")],
    data: DataOpt = Path("var"),
    reset_password: Annotated[
        bool,
        typer.Option(
            "--reset-password",
            help="Take over an existing account whose address was never confirmed: give it this password "
            "and end its sessions (without it, such an account is refused)",
        ),
    ] = False,
) -> None:
    """Create the administrator EMAIL, or make that existing, confirmed account an active admin (idempotent).

    The password is read from ATRIUM_ADMIN_PASSWORD or asked for; it is only used for a new account, or
    with --reset-password for an unconfirmed one.
    """
    from contracts import AtriumError

    password = os.environ.get("ATRIUM_ADMIN_PASSWORD") or typer.prompt(
        "Password for the new administrator", hide_input=True, confirmation_prompt=True
    )
    try:
        typer.echo(asyncio.run(_create_admin(email, password, data, take_over=reset_password)))
    except AtriumError as exc:
        typer.echo(f"atrium: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        typer.echo(f"atrium: {exc}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("generate")
def keys_generate(data: DataOpt = Path("var")) -> None:
    """Add a new 4096-bit signing key. New tokens are signed with it; older keys keep verifying
    until you delete their files (after the access-token lifetime, 15 minutes)."""
    from services.auth.keys import generate_key

    key = generate_key(data / "keys" / "auth")
    typer.echo(
        f"New signing key {key.kid} in {data / 'keys' / 'auth'}; the running auth service uses it "
        "within seconds."
    )


@keys_app.command("list")
def keys_list(data: DataOpt = Path("var")) -> None:
    """Live signing keys, oldest first (the last one signs)."""
    from services.auth.keys import load_keys

    keys = load_keys(data / "keys" / "auth")
    if not keys:
        typer.echo("No signing keys yet; `atrium keys generate` or the first start makes one.")
    for key in keys:
        typer.echo(key.kid)
