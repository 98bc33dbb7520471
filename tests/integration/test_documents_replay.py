"""`atrium documents replay --since … --owner …` re-runs what the stream remembers, for administrators only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts import Forbidden
from infra.cli_docs import parse_since, replay
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h


async def published(stack: Stack, http: httpx.AsyncClient, user: AppUser, doc_id: str) -> None:
    """Wait until the outbox relay sent the upload (the first task is then visible to the workers)."""
    from sqlalchemy import select

    from services.docs.tables import outbox

    db = h.deps(stack).db
    for _ in range(100):
        async with db.session() as s:
            rows = (await s.execute(select(outbox.c.sent_at).where(outbox.c.msg_id.startswith(doc_id)))).all()
        if rows and all(r.sent_at for r in rows):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("upload event never published")


async def test_replay_since_for_one_owner(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    other = await register_and_login(http)
    mine = (await h.upload(http, new_user, h.pdf_bytes("r1"), "r1.pdf")).json()["documents"][0]["document"]
    theirs = (await h.upload(http, other, h.pdf_bytes("r2"), "r2.pdf")).json()["documents"][0]["document"]
    await published(stack, http, new_user, mine["id"])
    await published(stack, http, other, theirs["id"])

    totals = await replay(
        stack.nats_url, new_admin.access_token, since, uuid.UUID(new_user.id), dry_run=False
    )
    assert totals == {"found": 1, "queued": 1, "missing": 0}
    after = (await http.get(f"/documents/{mine['id']}", headers=new_user.headers)).json()
    assert after["run_id"] != mine["run_id"]
    assert "reprocess" in {t["kind"] for t in after["tasks"]}
    untouched = (await http.get(f"/documents/{theirs['id']}", headers=other.headers)).json()
    assert untouched["run_id"] == theirs["run_id"]

    with pytest.raises(Forbidden):
        await replay(stack.nats_url, new_user.access_token, since, None, dry_run=False)


def test_parse_since() -> None:
    assert parse_since("2026-01-31T12:00Z") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert datetime.now(UTC) - parse_since("2h") - timedelta(hours=2) < timedelta(seconds=5)
