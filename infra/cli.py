"""The `atrium` command."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from contracts import REGISTRY, AtriumError
from contracts.base import Event, Rpc
from services.kit.config import nats_servers

ROOT = Path(__file__).resolve().parent.parent

app = typer.Typer(
    help="Atrium: a self-hosted platform for small teams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bus_app = typer.Typer(help="Talk to the bus with the same contracts the services use.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")

DataOpt = Annotated[Path, typer.Option("--data", help="State directory of the stack")]


def _mount_optional(module: str, attr: str, name: str, help_text: str) -> None:
    """Sub-commands that live with their domain (auth, documents) are mounted when present."""
    try:
        sub = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return
    app.add_typer(sub, name=name, help=help_text)


@app.command()
def up(
    port: Annotated[int, typer.Option("--port", help="HTTP port of the gateway")] = 8080,
    data: DataOpt = Path("var"),
    dev: Annotated[
        bool, typer.Option("--dev", help="Restart services on code changes; serve the web app via Vite")
    ] = False,
    no_web_build: Annotated[bool, typer.Option("--no-web-build", help="Do not (re)build web/dist")] = False,
    debug: Annotated[
        list[str],
        typer.Option(
            "--debug",
            help="Start this process (a service's name or `gateway`) under debugpy, listening for a debugger "
            "to attach on 127.0.0.1:5678 (the next one on 5679…); repeat for more",
        ),
    ] = [],  # noqa: B006  (typer reads the default; never mutated)
) -> None:
    """Start embedded NATS + PostgreSQL, every service and the gateway; print the URL."""
    from .devstack import run

    raise typer.Exit(run(data, port, dev, build_web=not no_web_build, debug=tuple(debug)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Run the whole suite (extra arguments go to pytest, e.g. `./atrium test tests/unit -x`)."""
    args = list(ctx.args)
    if not any(a.startswith("-n") or a == "--numprocesses" for a in args):
        args = ["-n", os.environ.get("ATRIUM_TEST_WORKERS", "2"), "--dist", "loadfile", *args]
    cmd = [sys.executable, "-m", "pytest", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    raise typer.Exit(subprocess.call(cmd, cwd=ROOT, env=env))


@app.command("compose-test", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compose_test(ctx: typer.Context) -> None:
    """Build the images and start compose.yaml under podman, then check it (tests/compose; minutes).

    Installs what it lacks first (infra/docker/podman/install.sh: podman, podman-compose, debootstrap);
    extra arguments go to pytest, e.g. `./atrium compose-test -k secrets`."""
    cmd = [sys.executable, "-m", "pytest", "tests/compose", "-n", "0", "-s", "--durations=0", *ctx.args]
    raise typer.Exit(subprocess.call(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}))


@app.command()
def migrate(
    data: DataOpt = Path("var"),
    hand_out: Annotated[
        Path | None,
        typer.Option(
            "--hand-out",
            help="Also write each process's own credentials to DIR/<process>/secrets (compose: one volume each)",
        ),
    ] = None,
) -> None:
    """Create schemas and roles and run every service's migrations (also done by `up`); write the NATS
    users and permissions (`<data>/nats/users.conf`, passwords in `<data>/secrets/nats.json`) for compose."""
    from .devstack import DevStack
    from .nats.accounts import write_config

    stack = DevStack(data_dir=data, http_port=0)
    try:
        write_config(data)
        if os.environ.get("DATABASE_URL"):
            asyncio.run(stack._provision_and_migrate(os.environ["DATABASE_URL"]))
        else:
            from .embedded import EmbeddedPostgres

            stack.acquire_lock()
            pg = EmbeddedPostgres(data).start()
            try:
                asyncio.run(stack._provision_and_migrate(pg.admin_url))
            finally:
                pg.stop()
        if hand_out is not None:
            from .handout import hand_out as write_handout

            written = write_handout(data, hand_out)
            typer.echo(f"atrium: handed out {len(written)} credential and config files under {hand_out}")
    except Exception as exc:
        typer.echo(f"atrium: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def seed(data: DataOpt = Path("var")) -> None:
    """Load demo data into the running stack: a demo user and a few documents."""
    from .seed import run_seed

    raise typer.Exit(run_seed(data))


@app.command()
def backup(
    file: Annotated[
        str, typer.Argument(help="Where to write the backup (a tar file; - for standard output)")
    ],
    data: DataOpt = Path("var"),
    encrypt: Annotated[
        bool,
        typer.Option("--encrypt", help="Encrypt with a passphrase (ATRIUM_BACKUP_PASSPHRASE, else a prompt)"),
    ] = False,
) -> None:
    """Back up the stack of --data, running or not: database, event streams, KV buckets, stored files,
    secrets and keys, in one file. It holds the stack's secrets: store it safely."""
    from .backup import BackupError, backup_command
    from .backup_crypto import BackupDecryptError
    from .embedded import StackError

    try:
        backup_command(file, data, encrypt)
    except (BackupError, BackupDecryptError, StackError) as exc:
        typer.echo(f"atrium: backup failed: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def restore(
    file: Annotated[str, typer.Argument(help="A backup made by `atrium backup` (- for standard input)")],
    data: Annotated[Path, typer.Option("--data", help="New, empty state directory to rebuild the stack in")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the stack in a non-empty --data (it must not be running)")
    ] = False,
) -> None:
    """Rebuild a stack from a backup into --data; then start it with `./atrium up --data DIR`."""
    from .backup import BackupError, restore_command
    from .backup_crypto import BackupDecryptError
    from .embedded import StackError

    try:
        restore_command(file, data, force)
    except (BackupError, BackupDecryptError, StackError) as exc:
        typer.echo(f"atrium: restore failed: {exc}", err=True)
        raise typer.Exit(1) from None


# ---- bus ---------------------------------------------------------------------------------------
def _nats_url(data: Path, nats_url: str | None) -> str:
    if nats_url:
        return nats_url
    if os.environ.get("NATS_URL"):
        return os.environ["NATS_URL"]
    from .devstack import read_stack_info

    info = read_stack_info(data)
    if not info:
        typer.echo(
            f"atrium: no running stack found for --data {data}; start one with ./atrium up "
            "or pass --nats nats://host:port",
            err=True,
        )
        raise typer.Exit(2)
    return str(info["nats_url"])


def nats_options(data: Path, url: str) -> dict[str, Any]:
    """`nats.connect` credentials of the operator user (infra/nats): from the secrets of `data` when `url`
    is that stack's, else ATRIUM_NATS_USER/ATRIUM_NATS_PASSWORD or ATRIUM_NATS_SECRETS; none for a server
    without auth (or credentials in the URL)."""
    from services.kit.config import nats_login

    from .devstack import read_stack_info
    from .nats.accounts import OPERATOR

    ours = (read_stack_info(data) or {}).get("nats_url") == url
    return nats_login(OPERATOR, data, stack_secrets_first=ours).connect_options()


def _lookup(subject: str) -> Rpc[Any, Any] | Event[Any]:
    desc = REGISTRY.find(subject)
    if desc is None:
        known = ", ".join(sorted(REGISTRY.rpcs) + sorted(REGISTRY.events))
        typer.echo(f"atrium: {subject} is not a declared subject. Known: {known}", err=True)
        raise typer.Exit(2)
    return desc


def _parse_json(payload: str) -> Any:
    try:
        return json.loads(payload or "{}")
    except json.JSONDecodeError as exc:
        typer.echo(f"atrium: the payload is not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from None


NatsOpt = Annotated[str | None, typer.Option("--nats", help="NATS URL (default: the stack of --data)")]


@bus_app.command("request")
def bus_request(
    subject: str,
    payload: Annotated[str, typer.Argument(help="JSON request body")] = "{}",
    token: Annotated[str | None, typer.Option("--token", envvar="ATRIUM_TOKEN", help="Access token")] = None,
    timeout: float = 10.0,
    data: DataOpt = Path("var"),
    nats_url: NatsOpt = None,
) -> None:
    """Validate PAYLOAD against SUBJECT's request model, send it and print the reply."""
    import nats

    from services.kit.client import call

    desc = _lookup(subject)
    if not isinstance(desc, Rpc):
        typer.echo(f"atrium: {subject} is an event; use `atrium bus publish`", err=True)
        raise typer.Exit(2)
    body = _parse_json(payload)

    async def go() -> int:
        url = _nats_url(data, nats_url)
        nc = await nats.connect(
            nats_servers(url), connect_timeout=3, max_reconnect_attempts=1, **nats_options(data, url)
        )
        try:
            reply = await call(nc, desc, body, token=token, timeout=timeout)
            typer.echo(json.dumps(reply.model_dump(mode="json"), indent=2, ensure_ascii=False))
            return 0
        except AtriumError as err:
            typer.echo(json.dumps({"error": err.to_body().model_dump(mode="json")}, indent=2), err=True)
            return 1
        finally:
            await nc.close()

    raise typer.Exit(asyncio.run(go()))


@bus_app.command("publish")
def bus_publish(
    subject: str,
    payload: Annotated[str, typer.Argument(help="JSON event body")],
    msg_id: Annotated[
        str | None, typer.Option("--msg-id", help="Nats-Msg-Id for JetStream de-duplication")
    ] = None,
    data: DataOpt = Path("var"),
    nats_url: NatsOpt = None,
) -> None:
    """Validate PAYLOAD against SUBJECT's event model and publish it to JetStream."""
    import nats
    from pydantic import ValidationError

    from services.kit.bus import validation_details

    desc = _lookup(subject)
    if not isinstance(desc, Event):
        typer.echo(f"atrium: {subject} is a request subject; use `atrium bus request`", err=True)
        raise typer.Exit(2)
    try:
        event = desc.model.model_validate(_parse_json(payload))
    except ValidationError as err:
        typer.echo(json.dumps({"error": "invalid", "details": validation_details(err)}, indent=2), err=True)
        raise typer.Exit(1) from None

    async def go() -> None:
        from contracts import Header

        url = _nats_url(data, nats_url)
        nc = await nats.connect(
            nats_servers(url), connect_timeout=3, max_reconnect_attempts=1, **nats_options(data, url)
        )
        try:
            headers = {Header.MSG_ID: msg_id} if msg_id else None
            ack = await nc.jetstream().publish(
                desc.subject, event.model_dump_json().encode(), headers=headers
            )
            typer.echo(json.dumps({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))
        finally:
            await nc.close()

    asyncio.run(go())


@bus_app.command("subjects")
def bus_subjects(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every subject with its request/reply/event models."""
    from .asyncapi import subject_table

    rows = subject_table()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["subject"]) for r in rows)
    for r in rows:
        models = r["event"] if r["kind"] in ("event", "progress") else f"{r['request']} -> {r['reply']}"
        extra = f"  [{r['access']}]" if r.get("access") else f"  [{r.get('stream', '')}]"
        typer.echo(f"{r['kind']:8} {r['subject']:<{width}}  {models}{extra}")


@bus_app.command("asyncapi")
def bus_asyncapi(
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("docs/asyncapi.json"),
) -> None:
    """Write the AsyncAPI 3.0 document of the whole bus."""
    from .asyncapi import build_asyncapi

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(build_asyncapi(), indent=2))
    typer.echo(f"wrote {output}")


_mount_optional("infra.cli_auth", "admin_app", "admin", "Administer accounts (first admin, …)")
_mount_optional("infra.cli_auth", "keys_app", "keys", "Token signing keys")
_mount_optional("infra.cli_docs", "docs_app", "documents", "Documents: replay, reprocess")
_mount_optional(
    "infra.cli_remote", "remote_app", "remote", "A remote stack's API, with a personal access token"
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
