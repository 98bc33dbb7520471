"""Task history at scale: the task list and the task statistics over 1,000,000 task rows.

Starts its own embedded PostgreSQL, migrates the docs schema and fills `tasks` in the server
(`INSERT … SELECT generate_series`): one heavy user with 10 % of the rows, the rest spread over 2,000
users; a year of `created_at`; statuses ~85 % succeeded, 8 % failed, 4 % superseded, the rest queued or
running; kinds extract / analyze / reprocess, analyze rows with a provider, model and tokens. Then it runs
the documents service's own handlers (`docs.task.list`, `docs.task.stats`: `services/docs/handlers/
tasks.py`) for a typical user, the heavy user and an administrator's view of everyone, and reports median
and p95. Goal (issue 16): p95 under 100 ms.

    python -m bench.bench_tasks [--tasks 1000000] [--runs 30] [--keep DIR]

With --keep, the data directory is kept and a later run with the same directory measures its rows again
instead of filling (the fill takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.bench_list import deps_for, superuser_url, timed
from bench.results import publish, summary
from contracts.docs_api import ListTasks, TaskStatsQuery
from infra.embedded import EmbeddedPostgres, provision
from services.docs.access import acting
from services.docs.handlers.common import user
from services.docs.handlers.tasks import list_tasks, task_stats
from services.kit import migrations
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.security import Actor

GOAL_P95_MS = 100.0
FLOOR = "floor: a handler that reads nothing (caller, transaction, SELECT 1)"
USERS = 2000
HEAVY = uuid.UUID("00000000-0000-4000-8000-00000000beef")  # the same in a kept data directory


async def generate(db: Database, heavy: uuid.UUID, n: int) -> None:
    """`n` task rows: the heavy user's tenth, the rest over USERS users (ids derived from the row number)."""
    async with db.transaction() as s:
        await s.execute(
            text(
                """
                INSERT INTO tasks (id, owner_id, document_id, filename, run_id, stage, kind, status, attempt,
                                   worker, created_at, started_at, finished_at, duration_ms, error, reason,
                                   provider, model, tokens_in, tokens_out)
                SELECT gen_random_uuid(),
                       CASE WHEN i % 10 = 0 THEN CAST(:heavy AS uuid)
                            ELSE md5('user' || (i % :users))::uuid END,
                       NULL,
                       'document-' || i || '.pdf',
                       gen_random_uuid(),
                       k.stage, k.kind, st.status, 1, 'bench:1',
                       ts, ts, ts + (d * interval '1 millisecond'), d,
                       CASE WHEN st.status = 'failed' THEN 'The PDF could not be read.' END,
                       CASE WHEN st.status = 'failed' THEN 'unreadable' END,
                       CASE WHEN k.kind = 'analyze' THEN (ARRAY['builtin','anthropic','ollama'])[1 + i % 3] END,
                       CASE WHEN k.kind = 'analyze' THEN (ARRAY['rules','claude','llama'])[1 + i % 3] END,
                       CASE WHEN k.kind = 'analyze' THEN 500 + i % 3000 END,
                       CASE WHEN k.kind = 'analyze' THEN 50 + i % 400 END
                FROM generate_series(1, :n) AS i,
                     LATERAL (SELECT now() - (i::float / :n) * interval '365 days' AS ts,
                                     200 + (hashint4(i) & 65535) % 20000 AS d,
                                     (hashint4(i * 7) & 65535) % 100 AS r) AS x,
                     LATERAL (SELECT CASE WHEN r < 85 THEN 'succeeded' WHEN r < 93 THEN 'failed'
                                          WHEN r < 97 THEN 'superseded' WHEN r < 99 THEN 'queued'
                                          ELSE 'running' END AS status) AS st,
                     LATERAL (SELECT CASE i % 5 WHEN 0 THEN 'reprocess' WHEN 1 THEN 'analyze'
                                                WHEN 2 THEN 'analyze' ELSE 'extract' END AS kind,
                                     CASE i % 5 WHEN 1 THEN 'analyze' WHEN 2 THEN 'analyze'
                                                ELSE 'extract' END AS stage) AS k
                """
            ),
            {"heavy": str(heavy), "users": USERS, "n": n},
        )
    async with db.engine.connect() as conn:  # fresh statistics, as autovacuum would have after a while
        await conn.execute(text("COMMIT"))
        await conn.execute(text("VACUUM ANALYZE tasks"))


async def run(
    n: int, runs: int, keep: Path | None
) -> tuple[list[dict[str, Any]], float, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-tasks-") as tmp:
        data = keep or Path(tmp)
        pg = EmbeddedPostgres(data).start()
        try:
            urls = await provision(pg.admin_url, data)
            await migrations.upgrade("docs", urls["docs"], "docs")
            db = Database(urls["docs"], "docs")
            heavy = HEAVY
            t0 = time.perf_counter()
            # Written as the database superuser: the service's own role is held to row-level security.
            loader = Database(superuser_url(pg), "docs")
            try:
                async with loader.read() as s:
                    filled = (await s.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
                if filled not in (0, n):
                    raise SystemExit(
                        f"{data} holds {filled:,} tasks, not {n:,}: use another --keep directory"
                    )
                if not filled:
                    await generate(loader, heavy, n)
            finally:
                await loader.dispose()
            fill_s = time.perf_counter() - t0 if not filled else 0.0
            async with db.read() as s:
                typical = (await s.execute(text("SELECT md5('user' || 7)::uuid"))).scalar_one()
            deps = deps_for(db)

            def ctx(user_id: uuid.UUID, role: str = "user") -> Ctx:
                return Ctx(
                    request_id="bench",
                    actor=Actor(user_id=user_id, role=role, session_id="bench", token=""),  # type: ignore[arg-type]
                )

            user_ctx, heavy_ctx, admin_ctx = ctx(typical), ctx(heavy), ctx(uuid.uuid4(), "admin")
            month = datetime.now(UTC) - timedelta(days=30)
            first = await list_tasks(ListTasks(limit=50), heavy_ctx, deps)
            scenarios: list[tuple[str, Any, Any, Ctx]] = [
                ("list: a typical user, newest 50", list_tasks, ListTasks(limit=50), user_ctx),
                ("list: heavy user, newest 50", list_tasks, ListTasks(limit=50), heavy_ctx),
                (
                    "list: heavy user, page 2 (cursor)",
                    list_tasks,
                    ListTasks(limit=50, cursor=first.next_cursor),
                    heavy_ctx,
                ),
                (
                    "list: heavy user, failed only",
                    list_tasks,
                    ListTasks(limit=50, status=["failed"]),
                    heavy_ctx,
                ),
                (
                    "list: heavy user, failed or running, reprocess",
                    list_tasks,
                    ListTasks(limit=50, status=["failed", "running"], kind=["reprocess"]),
                    heavy_ctx,
                ),
                (
                    "list: heavy user, last 30 days, page 2",
                    list_tasks,
                    ListTasks(limit=50, created_from=month, cursor=first.next_cursor),
                    heavy_ctx,
                ),
                (
                    "list: heavy user, filename contains",
                    list_tasks,
                    ListTasks(limit=50, filename="1234"),
                    heavy_ctx,
                ),
                (
                    "list: admin, everyone, newest 50",
                    list_tasks,
                    ListTasks(limit=50, all_users=True),
                    admin_ctx,
                ),
                (
                    "list: admin, everyone, failed, last 30 days",
                    list_tasks,
                    ListTasks(limit=50, all_users=True, status=["failed"], created_from=month),
                    admin_ctx,
                ),
                ("stats: a typical user", task_stats, TaskStatsQuery(), user_ctx),
                ("stats: heavy user", task_stats, TaskStatsQuery(), heavy_ctx),
                (
                    "stats: heavy user, last 30 days",
                    task_stats,
                    TaskStatsQuery(created_from=month),
                    heavy_ctx,
                ),
                ("stats: admin, everyone", task_stats, TaskStatsQuery(all_users=True), admin_ctx),
                (
                    "stats: admin, everyone, last 30 days",
                    task_stats,
                    TaskStatsQuery(all_users=True, created_from=month),
                    admin_ctx,
                ),
            ]
            load_before = os.getloadavg()[0]
            rows: list[dict[str, Any]] = []

            async def floor() -> None:
                """What any handler costs here before its own query: the caller, a transaction in which the
                database knows who acts, one trivial statement (the round trips, on this machine's load)."""
                caller = await user(user_ctx, deps)
                async with acting(db, caller) as s:
                    await s.execute(text("SELECT 1"))

            rows.append({"name": FLOOR, "total": "—", **summary(await timed(floor, runs))})
            for name, handler, cmd, c in scenarios:
                reply = await handler(cmd, c, deps)

                async def one(handler: Any = handler, cmd: Any = cmd, c: Ctx = c) -> None:
                    await handler(cmd, c, deps)

                total = f"{reply.total:,}" + ("+" if getattr(reply, "total_capped", False) else "")
                rows.append({"name": name, "total": total, **summary(await timed(one, runs))})
            await db.dispose()
            return rows, fill_s, (load_before, os.getloadavg()[0])
        finally:
            pg.stop()


def report(rows: list[dict[str, Any]], n: int, runs: int, fill_s: float, load: tuple[float, float]) -> str:
    worst = max(r["p95"] for r in rows if r["name"] != FLOOR)
    lines = [
        f"## Task history: list and statistics over {n:,} task rows",
        "",
        f"`python -m bench.bench_tasks` — own embedded PostgreSQL; {n:,} rows generated in the server "
        f"({f'{fill_s:.0f} s' if fill_s else 'earlier, kept with --keep'}): one heavy user with {n // 10:,}, the rest over {USERS:,} users (~{n * 9 // 10 // USERS:,} "
        "each), a year of history. Each scenario is the documents service's handler (`docs.task.list`: the page "
        'of 50 by keyset and the count capped at 1,000 — "1,000+"; `docs.task.stats`: counts by status and kind, '
        "average and p95 duration, per provider and per day, from the per-month rollups for whole UTC months, "
        "the per-day rollups for the other whole days and the newest 90 days, and the tasks of the range's "
        "partial days; migrations 0012, 0013), "
        f"{runs} runs after a warm-up. Goal: p95 under {GOAL_P95_MS:.0f} ms. Machine "
        f"load (1-minute average, 2 cores shared with other work): {load[0]:.1f} when the runs started, "
        f"{load[1]:.1f} when they ended.",
        "",
        "| scenario | rows matched | median ms | p95 ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['total']} | {r['median']:.1f} | {r['p95']:.1f} |")
    verdict = "met" if worst < GOAL_P95_MS else "NOT met"
    lines += [
        "",
        f"Worst p95: {worst:.1f} ms — goal {verdict} on this machine at this load (the floor row is what a "
        "handler costs before any query of its own).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--keep", type=Path, help="a data directory to keep and reuse (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    rows, fill_s, load = asyncio.run(run(args.tasks, args.runs, args.keep))
    publish("docs-tasks", report(rows, args.tasks, args.runs, fill_s, load))


if __name__ == "__main__":
    main()
