"""The orphan-upload sweep over a store of 100,000 recorded uploads: the sweep before (the whole store listed,
every old upload's name sent to PostgreSQL in one IN list, every sweep) against the sweep now (the store's
changes since the previous sweep, names checked once in batches; `housekeeping.sweep_orphan_uploads`).

Starts its own embedded NATS and PostgreSQL, fills the `documents` object store with N uploads (a tiny chunk
and a meta entry each, stored two hours ago) that N documents record, then measures, side by side:
the old sweep; this process's first sweep (it reads the whole store once); a sweep with nothing new; one
after 100 new recorded uploads, and the old sweep then; one after 100 new uploads of which 50 are orphans
(deleted: two statements and an object-store delete each, as before); and, for the whole loop's cost, the
cut-off chunks sweep that runs beside it (unchanged). Wall time, this process's CPU, the meta entries read,
the statements sent to PostgreSQL and the names in them.

    python -m bench.bench_orphan_sweep [--uploads 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from nats.js import api
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_META_PRE_TEMPLATE
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import ARRAY

from bench.bench_list import deps_for, superuser_url
from bench.results import publish
from contracts.documents import OBJECT_BUCKET
from infra.embedded import EmbeddedNats, EmbeddedPostgres, provision
from services.docs.access import as_system
from services.docs.blobs import NatsBlobs, _is_upload, _mtime
from services.docs.handlers import housekeeping
from services.docs.handlers.common import DocsDeps, UploadSweep
from services.docs.handlers.uploads import upload_lock
from services.docs.tables import documents
from services.kit import migrations
from services.kit.db import Database
from services.kit.objects import MSG_ROLLUP_SUBJECT

GRACE_S = 3600.0
OWNER = uuid.UUID(int=1)


async def put_old(store: Any, names: list[str]) -> None:
    """Store each name as a one-chunk object whose meta entry says it was written two grace periods ago."""
    js = store._js
    mtime = (datetime.now(UTC) - timedelta(seconds=2 * GRACE_S)).isoformat()

    async def one(name: str) -> None:
        nuid = uuid.uuid4().hex
        await js.publish(OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=store._name, obj=nuid), b"%")
        info = api.ObjectInfo(
            name=name, bucket=store._name, nuid=nuid, size=1, chunks=1, mtime=mtime, digest=""
        )
        subject = OBJ_META_PRE_TEMPLATE.format(
            bucket=store._name, obj=base64.urlsafe_b64encode(name.encode()).decode()
        )
        await js.publish(
            subject, json.dumps(info.as_dict()).encode(), headers={api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}
        )

    for start in range(0, len(names), 500):
        await asyncio.gather(*(one(n) for n in names[start : start + 500]))


async def record(loader: Database, names: list[str]) -> None:
    for start in range(0, len(names), 20_000):
        await loader.fetchrow(
            "INSERT INTO docs.documents (id, owner_id, filename, object_name, size, sha256, status, run_id)"
            " SELECT n::uuid, $2, 'bench.pdf', n, 1, repeat('0', 64), 'ready', gen_random_uuid()"
            " FROM unnest($1::text[]) n",
            names[start : start + 20_000],
            OWNER,
        )


async def sweep_before(deps: DocsDeps, store: Any, older_than_s: float, *, as_array: bool = False) -> int:
    """The sweep as it was (8aa1b77): the whole store listed, every old upload's name in one IN list (which
    asyncpg refuses past 32,767 names); `as_array`: the names bound as one array instead, so that the
    old way's cost can be measured at any size."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    infos = await store.list(ignore_deletes=True)
    old = {i.name for i in infos if _is_upload(i.name) and (_mtime(i.mtime) or cutoff) < cutoff}
    if not old:
        return 0
    d = documents.c
    async with as_system(deps.db, "retention", write=False) as s:
        match = d.object_name == sa.any_(sa.bindparam("names", sorted(old), type_=ARRAY(sa.Text)))
        where = match if as_array else d.object_name.in_(old)
        recorded = set((await s.execute(select(d.object_name).where(where))).scalars())
    swept = 0
    for name in sorted(old - recorded):
        async with as_system(deps.db, "retention") as s:
            if not (await s.execute(upload_lock(name, wait=False))).scalar():
                continue
            if (await s.execute(select(d.id).where(d.object_name == name))).first() is not None:
                continue
            await deps.blobs.delete(name)
            swept += 1
    return swept


class Counted:
    """Statements sent through SQLAlchemy (each transaction also runs one who-acts statement straight on
    asyncpg, counted by `transactions`), and the names bound in them."""

    def __init__(self, db: Database):
        self.statements = self.names = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, _sql: str, params: Any, *_: Any) -> None:
        self.statements += 1
        values = params.values() if isinstance(params, dict) else params or ()
        for v in values:  # IN lists come expanded, one parameter per name; an array is one parameter
            self.names += len(v) if isinstance(v, list) else int(isinstance(v, str) and _is_upload(v))


async def measure(label: str, sweep: Any, counted: Counted, read: list[int]) -> dict[str, Any]:
    counted.statements = counted.names = 0
    read.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        swept: int | str = await sweep()
    except Exception as exc:  # the old sweep past asyncpg's limit on query arguments
        swept = f"failed: {str(getattr(exc, 'orig', exc)).splitlines()[0][:80]}"
    return {
        "case": label,
        "wall_ms": (time.perf_counter() - wall) * 1000,
        "cpu_ms": (time.process_time() - cpu) * 1000,
        "entries": sum(read) if read else None,
        "statements": counted.statements,
        "names": counted.names,
        "swept": swept,
    }


async def run(n: int) -> tuple[list[dict[str, Any]], float, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-sweep-") as tmp:
        data = Path(tmp)
        nats_server = EmbeddedNats(data, auth=False).start()
        pg = EmbeddedPostgres(data).start()
        try:
            urls = await provision(pg.admin_url, data)
            await migrations.upgrade("docs", urls["docs"], "docs")
            db, loader = Database(urls["docs"], "docs"), Database(superuser_url(pg), "docs")
            nc = await nats.connect(nats_server.url)
            js = nc.jetstream()
            store = await js.create_object_store(OBJECT_BUCKET)
            t0 = time.perf_counter()
            names = [str(uuid.uuid4()) for _ in range(n)]
            await put_old(store, names)
            await record(loader, names)
            await loader.fetchrow("VACUUM ANALYZE docs.documents")
            fill_s = time.perf_counter() - t0

            read: list[int] = []

            class Reading(NatsBlobs):
                async def uploads_stored_after(self, mark: int) -> Any:
                    found = await super().uploads_stored_after(mark)
                    read.append(len(found[0]))
                    return found

            deps = dataclasses.replace(deps_for(db), blobs=Reading(store), upload_sweep=UploadSweep())
            counted = Counted(db)
            load = os.getloadavg()[0]

            def now_sweep() -> Any:
                return housekeeping.sweep_orphan_uploads(deps, older_than_s=GRACE_S)

            def old_sweep() -> Any:
                return sweep_before(deps, store, GRACE_S)

            def old_sweep_array() -> Any:
                return sweep_before(deps, store, GRACE_S, as_array=True)

            rows = [
                await measure(f"before: every sweep ({n:,} uploads)", old_sweep, counted, []),
                await measure("before, names as one array parameter", old_sweep_array, counted, []),
                await measure(
                    "now: a process's first sweep (reads the whole store once)", now_sweep, counted, read
                ),
                await measure("now: next sweep, nothing new", now_sweep, counted, read),
            ]
            recorded_only = [str(uuid.uuid4()) for _ in range(100)]
            await put_old(store, recorded_only)
            await record(loader, recorded_only)
            rows.append(
                await measure("now: next sweep, 100 new uploads, all recorded", now_sweep, counted, read)
            )
            rows.append(
                await measure(
                    f"before, names as an array: the same store ({n + 100:,})", old_sweep_array, counted, []
                )
            )
            # The loop's other half, unchanged: chunks no meta entry points to (lists every chunk subject).
            rows.append(
                await measure(
                    "unchanged: the cut-off chunks sweep beside it (`sweep_cut_off`)",
                    lambda: deps.blobs.sweep_cut_off(GRACE_S),
                    counted,
                    [],
                )
            )
            mixed = [str(uuid.uuid4()) for _ in range(100)]
            await put_old(store, mixed)
            await record(loader, mixed[:50])
            rows.append(
                await measure(
                    "now: next sweep, 100 new uploads, 50 of them orphans", now_sweep, counted, read
                )
            )
            await nc.close()
            await db.dispose()
            await loader.dispose()
            return rows, fill_s, (load, os.getloadavg()[0])
        finally:
            pg.stop()
            nats_server.stop()


def report(rows: list[dict[str, Any]], n: int, fill_s: float, load: tuple[float, float]) -> str:
    lines = [
        f"## Documents: the orphan-upload sweep over {n:,} recorded uploads",
        "",
        f"`python -m bench.bench_orphan_sweep --uploads {n}` — own embedded NATS and PostgreSQL; {n:,} uploads "
        f"(one chunk each, stored two hours ago) that {n:,} documents record (filled in {fill_s:.0f} s). "
        "CPU is this process's (the sweep's Python side; nats-server and PostgreSQL not included); statements "
        "are those sent through SQLAlchemy (each transaction adds one who-acts statement); names: upload names "
        "bound in them. Machine load (1-minute average, 2 cores shared with other helpers' work): "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end.",
        "",
        "| sweep | wall ms | CPU ms | meta entries read | statements | names sent | swept |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        entries = "whole store" if r["entries"] is None else f"{r['entries']:,}"
        lines.append(
            f"| {r['case']} | {r['wall_ms']:,.0f} | {r['cpu_ms']:,.0f} | {entries} | {r['statements']} "
            f"| {r['names']:,} | {r['swept']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    rows, fill_s, load = asyncio.run(run(args.uploads))
    publish("docs-orphan-sweep", report(rows, args.uploads, fill_s, load), write=not args.no_write)


if __name__ == "__main__":
    main()
