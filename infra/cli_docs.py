"""`atrium documents …`: re-run the pipeline from what the JetStream stream remembers.

`replay --since <time> [--owner <user id>]` reads `events.docs.uploaded` from the DOCUMENTS stream
starting at that time, collects the documents it names (optionally of one owner) and asks the
documents service (`docs.admin.replay`, administrators only) to start a new run for each one that
still exists — e.g. after changing the AI model. A new run id per document means the workers really
run again, and fields a user typed in by hand are kept as in every re-run.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from uuid import UUID

import nats
import typer
from nats.js.api import ConsumerConfig, DeliverPolicy

from contracts import AtriumError
from contracts.docs_api import DOCUMENT_REPLAY, ReplayDocuments
from contracts.documents import DOCUMENT_UPLOADED
from contracts.streams import DOCUMENTS_STREAM
from services.kit.client import call
from services.kit.config import nats_servers

docs_app = typer.Typer(help="Documents: replay the pipeline from the event stream.", no_args_is_help=True)

BATCH = 500


@docs_app.callback()
def documents_group() -> None:
    """Documents administration."""


def parse_since(value: str) -> datetime:
    """An ISO time (`2026-01-31`, `2026-01-31T12:00Z`) or a duration back from now (`90m`, `12h`, `7d`)."""
    value = value.strip()
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "use an ISO time like 2026-01-31T12:00Z or a duration like 12h or 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def uploaded_documents(nc: nats.NATS, since: datetime, owner: UUID | None) -> list[UUID]:
    """Document ids of every `events.docs.uploaded` in the stream since `since`, in stream order, once each."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        DOCUMENT_UPLOADED.subject,
        stream=DOCUMENTS_STREAM.name,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            # nats-py sends this string as is; the server wants RFC 3339 with a Z
            opt_start_time=since.isoformat().replace("+00:00", "Z"),  # type: ignore[arg-type]
        ),
    )
    found: dict[UUID, None] = {}
    try:
        while True:
            try:
                batch = await sub.fetch(BATCH, timeout=2)
            except nats.errors.TimeoutError:
                break
            for msg in batch:
                try:
                    event = DOCUMENT_UPLOADED.model.model_validate_json(msg.data)
                except ValueError:
                    continue
                if owner is None or event.owner_id == owner:
                    found[event.document_id] = None
            if not batch or batch[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return list(found)


async def replay(
    nats_url: str, token: str, since: datetime, owner: UUID | None, dry_run: bool, *, data: Path = Path("var")
) -> dict[str, int]:
    from .cli import nats_options

    nc = await nats.connect(
        nats_servers(nats_url), connect_timeout=3, max_reconnect_attempts=1, **nats_options(data, nats_url)
    )
    try:
        ids = await uploaded_documents(nc, since, owner)
        totals = {"found": len(ids), "queued": 0, "missing": 0}
        if dry_run:
            return totals
        for i in range(0, len(ids), BATCH):
            result = await call(
                nc, DOCUMENT_REPLAY, ReplayDocuments(ids=ids[i : i + BATCH]), token=token, timeout=60
            )
            totals["queued"] += result.queued
            totals["missing"] += result.missing
        return totals
    finally:
        await nc.close()


@docs_app.command("replay")
def replay_command(
    since: Annotated[str, typer.Option("--since", help="ISO time or duration back from now (12h, 7d)")],
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's documents (user id)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be replayed")] = False,
    token: Annotated[
        str | None, typer.Option("--token", envvar="ATRIUM_TOKEN", help="An administrator's access token")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats", help="NATS URL (default: the stack of --data)")
    ] = None,
    data: Annotated[Path, typer.Option("--data", help="State directory of the stack")] = Path("var"),
) -> None:
    """Start a new pipeline run for every document uploaded (or re-processed) since a time."""
    from .cli import _nats_url

    owner_id = None
    if owner:
        try:
            owner_id = UUID(owner)
        except ValueError:
            raise typer.BadParameter("--owner takes a user id (UUID)") from None
    if not token and not dry_run:
        typer.echo(
            "atrium: replay needs an administrator's access token (--token or ATRIUM_TOKEN).", err=True
        )
        raise typer.Exit(2)
    try:
        totals = asyncio.run(
            replay(_nats_url(data, nats_url), token or "", parse_since(since), owner_id, dry_run, data=data)
        )
    except AtriumError as err:
        typer.echo(json.dumps({"error": err.to_body().model_dump(mode="json")}, indent=2), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(totals))
