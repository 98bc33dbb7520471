"""Listing and search with sharing: the list goal's scenarios (bench/bench_list.py) for a user who owns
100,000 documents and receives shares from others, with and without the shared documents, in the same run.

Two sizes:
- `--scale 100k`: the measured user owns 100,000 documents, another owner 20,000; 1,000 shares in the
  database (documents and categories, to users and groups), the measured user in 20 of 40 groups.
- `--scale 1m`: 1,000,000 documents of 50 owners; the measured user owns 100,000, the 49 others share theirs
  with them (and with others) through the same 1,000 shares.

Of the 1,000 shares, `CATEGORY_SHARES` share a whole category (every document its owner filed under it:
each of an owner's 10 categories holds about a twentieth of their documents), five of them with the measured
user (two directly, three through their groups); the rest share one document each: a third with the
measured user, a third with one of their groups, a third with someone else.
The data is written as the database superuser (row-level security holds the service's own role): only the
documents' texts are drawn in Python (bench_list's vocabulary and word frequencies) and staged in an unlogged
scratch table; two connections meanwhile turn each staged chunk into documents and pages with set-based
INSERT … SELECT into the ordinary, logged tables (their other columns drawn in the server), the secondary
indexes dropped before and rebuilt after, two at a time, then VACUUM ANALYZE. `--keep DIR` keeps the database:
a later run with the same DIR and scale migrates it to the head revision and measures it without filling
again (the 1m fill takes tens of minutes on a shared 2-core machine). Each scenario then runs through the documents service's own list handler as the
measured user (row-level security on, the user's groups as the permissions service would give them):
"without sharing" lists only their own documents (`scope=mine`, the statement bench_list measures), "with
sharing" their own and those shared with them (`scope=all`, the default), alternating, `--runs` times each
after a warm-up. The 1-minute load average is printed beside each row: the machine may be shared.

    python -m bench.bench_sharing [--scale smoke|100k|1m] [--runs 40] [--keep DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.bench_list import (
    CATEGORY_NAMES,
    GOAL_P95_MS,
    LONG_DOCUMENTS,
    LONG_MARKER,
    LONG_PAGES,
    PAGE_WORDS,
    RARE,
    SCENARIOS,
    TYPES,
    deps_for,
    superuser_url,
    timed,
    vocabulary,
)
from bench.results import publish, summary
from contracts.docs_api import ListDocuments
from infra.embedded import EmbeddedPostgres, provision
from services.docs.handlers.documents import list_documents
from services.kit import migrations
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.security import Actor

SHARES = 1_000
CATEGORY_SHARES = 30
CATEGORY_SHARES_REACHING = 5  # the first five: two to the measured user, three to groups of theirs
GROUPS, MEMBER_OF = 40, 20
OTHER_CATEGORIES = 10  # per other owner; a document is filed under one of them half the time
STAGE = "bench_fill"  # a scratch schema for the generator's texts, dropped after the fill
CHUNK = 10_000  # texts staged at a time; the writers turn each into documents while the next is drawn
SAMPLE = 2_000  # documents per other owner that document shares are drawn from
TABLES_INDEXED = ("documents", "document_search", "pages", "document_categories")


@dataclass(frozen=True)
class Scale:
    name: str
    title: str
    mine: int  # the measured user's documents
    others: int  # how many other owners
    per_other: int  # documents each
    long: int = LONG_DOCUMENTS  # the measured user's long documents (40 pages; a test fills a few)


SCALES = {
    "smoke": Scale("smoke", "10,000 documents (a smoke test of the script)", 10_000, 2, 2_000),
    "100k": Scale("100k", "100,000 documents", 100_000, 1, 20_000),
    "1m": Scale("1m", "1,000,000 documents of 50 owners", 100_000, 49, 18_367),
}


@dataclass
class Data:
    user: uuid.UUID
    groups: list[uuid.UUID]
    cats: dict[str, uuid.UUID]
    shared_documents: int = 0  # distinct documents shared with the measured user
    counts: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step of the fill took
    fill_load: list[float] = field(default_factory=list)  # 1-minute load average when the fill began, ended
    reused: bool = False  # measured on a database an earlier run filled (and kept)


class Generator:
    """Documents like bench_list's (Zipf words, types, senders, dates, categories, long documents)."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        weights = [1.0 / (i + 1) for i in range(len(self.words))]
        self.cum = list(itertools.accumulate(weights))
        self.senders = [f"Sender {i} {self.rng.choice(self.words).title()}" for i in range(200)]
        self.start = datetime(2021, 1, 1, tzinfo=UTC)

    def body(self, k: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum, k=k))


DOC_COLUMNS = [
    "id",
    "owner_id",
    "filename",
    "object_name",
    "size",
    "sha256",
    "status",
    "run_id",
    "page_count",
    "document_type",
    "title",
    "sender",
    "document_date",
    "body_text",
    "created_at",
    "updated_at",
]
PAGE_COLUMNS = ["document_id", "owner_id", "number", "text"]


def _documents_sql() -> str:
    """A chunk of the staged texts (`$5`) become documents, every other column drawn in the server the way
    bench_list's generator draws it: status, size, type, a title of two words, one of 200 senders, a document
    date over five years, uploads spread evenly over the same years for every owner."""
    return f"""
INSERT INTO docs.documents (id, owner_id, filename, object_name, size, sha256, status, run_id, page_count,
                            document_type, title, sender, document_date, body_text, created_at, updated_at)
SELECT b.id, o.id, 'doc-' || lpad(b.i::text, 6, '0') || '.pdf', b.id::text,
       20000 + floor(random() * 4980001)::int,
       md5(random()::text) || md5(random()::text),
       CASE WHEN random() < 0.95 THEN 'ready'
            ELSE (ARRAY['failed', 'needs_ocr', 'queued'])[1 + floor(random() * 3)::int] END,
       gen_random_uuid(), 1 + floor(random() * 20)::int,
       ($1::text[])[1 + floor(random() * cardinality($1::text[]))::int],
       initcap(($2::text[])[1 + floor(random() * cardinality($2::text[]))::int]) || ' '
           || ($2::text[])[1 + floor(random() * cardinality($2::text[]))::int],
       ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int],
       date '2020-01-01' + floor(random() * (5 * 365 + 1))::int,
       b.body, t.at, t.at
FROM {STAGE}.bodies b JOIN {STAGE}.owners o ON o.k = b.owner
CROSS JOIN LATERAL (SELECT timestamptz '2021-01-01 00:00+00'
                           + (b.i * $4::float8 / o.count) * interval '1 minute' AS at) t
WHERE b.chunk = $5"""


def _pages_sql() -> str:
    return f"""
INSERT INTO docs.pages (document_id, owner_id, number, text)
SELECT b.id, o.id, 1, b.body FROM {STAGE}.bodies b JOIN {STAGE}.owners o ON o.k = b.owner
WHERE b.chunk = $1"""


# The measured user files each document under 0–2 of their 6 categories (count and choice uniform); every
# other owner files half their documents under one of their 10 folders.
_LINKS_SQL = f"""
WITH picks AS MATERIALIZED (
    SELECT b.id, o.id AS owner_id, o.k, floor(random() * 3)::int AS n, random() AS filed, random() AS pick
    FROM {STAGE}.bodies b JOIN {STAGE}.owners o ON o.k = b.owner)
INSERT INTO docs.document_categories (document_id, category_id, source, owner_id)
SELECT p.id, c.category, 'user', p.owner_id FROM picks p
CROSS JOIN LATERAL (SELECT category FROM unnest($1::uuid[]) category ORDER BY random() LIMIT p.n) c
WHERE p.k = 0
UNION ALL
SELECT p.id, o.categories[1 + floor(p.pick * cardinality(o.categories))::int], 'user', p.owner_id
FROM picks p JOIN {STAGE}.owners o ON o.k = p.k
WHERE p.k > 0 AND p.filed < 0.5"""


async def _both(conns: list[asyncpg.Connection], work: list[list[tuple[Any, ...]]]) -> None:
    """Run each connection's statements in turn, the connections at once (the machine's two cores)."""

    async def one(conn: asyncpg.Connection, statements: list[tuple[Any, ...]]) -> None:
        for sql, *args in statements:
            await conn.execute(sql, *args)

    await asyncio.gather(*(one(c, w) for c, w in zip(conns, work, strict=True)))


async def generate(conns: list[asyncpg.Connection], scale: Scale, seed: int = 7) -> Data:
    """Fill the docs schema for `scale` through three superuser connections; returns the measured user.

    The only thing drawn in Python is each document's text (Generator.body: bench_list's vocabulary and
    word frequencies), staged a chunk at a time in an unlogged scratch table (dropped after); two other
    connections meanwhile write each staged chunk's documents and pages with set-based INSERT … SELECT
    into the real (logged) tables, the other columns drawn in the server. The category links are one
    statement after; the secondary indexes are dropped first and rebuilt at the end, two at a time."""
    conn = conns[0]
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = round(now - clock, 1)
        print(f"  {name}: {now - clock:.1f} s", flush=True)
        clock = now

    g = Generator(seed)
    rng = g.rng
    user = uuid.uuid4()
    groups = [uuid.uuid4() for _ in range(GROUPS)]
    mine_groups = groups[:MEMBER_OF]
    strangers = [uuid.uuid4() for _ in range(30)]
    cats = {name: uuid.uuid4() for name in CATEGORY_NAMES}
    others = [uuid.uuid4() for _ in range(scale.others)]
    other_cats = {o: [uuid.uuid4() for _ in range(OTHER_CATEGORIES)] for o in others}
    indexes = await _without_indexes(conn)
    await conn.copy_records_to_table(
        "categories",
        schema_name="docs",
        columns=["id", "owner_id", "name"],
        records=[(cid, user, name) for name, cid in cats.items()]
        + [(c, o, f"Folder {n}") for o in others for n, c in enumerate(other_cats[o])],
    )
    await conn.execute(f"DROP SCHEMA IF EXISTS {STAGE} CASCADE; CREATE SCHEMA {STAGE}")
    await conn.execute(
        f"CREATE UNLOGGED TABLE {STAGE}.bodies (chunk int, owner int, i int, id uuid, body text);"
        f"CREATE INDEX ON {STAGE}.bodies (chunk);"
        f"CREATE UNLOGGED TABLE {STAGE}.owners (k int PRIMARY KEY, id uuid, count int, categories uuid[])"
    )
    owners = [(user, scale.mine)] + [(o, scale.per_other) for o in others]
    await conn.copy_records_to_table(
        "owners",
        schema_name=STAGE,
        records=[(k, o, n, other_cats.get(o, [])) for k, (o, n) in enumerate(owners)],
    )
    # Shared documents are drawn from what each other owner has: keep a sample of ids as they are staged.
    sample: dict[uuid.UUID, list[uuid.UUID]] = {o: [] for o in others}
    lists = (TYPES, g.words, g.senders, float(scale.mine))
    chunks: asyncio.Queue[int | None] = asyncio.Queue()

    async def writer(conn: asyncpg.Connection) -> None:
        while (chunk := await chunks.get()) is not None:
            await conn.execute(_documents_sql(), *lists, chunk)
            await conn.execute(_pages_sql(), chunk)

    # Two connections write (the tsvectors are most of the work) while this one draws and stages the texts.
    writers = [asyncio.create_task(writer(c)) for c in conns[:2]]
    chunk = 0
    for k, (owner, count) in enumerate(owners):
        for offset in range(0, count, CHUNK):
            rows = []
            for i in range(offset, min(offset + CHUNK, count)):
                doc_id = uuid.uuid4()
                body = g.body(120)
                if rng.random() < 0.0001:
                    body += f" {RARE}"
                rows.append((chunk, k, i, doc_id, body))
                if owner != user and len(sample[owner]) < SAMPLE and rng.random() < 0.2:
                    sample[owner].append(doc_id)
            await conns[2].copy_records_to_table("bodies", schema_name=STAGE, records=rows)
            chunks.put_nowait(chunk)
            chunk += 1
            await asyncio.sleep(0)  # let an idle writer send its statement before drawing the next chunk
    phase("texts drawn and staged")
    for _ in writers:
        chunks.put_nowait(None)
    await asyncio.gather(*writers)
    phase("documents and pages written")
    await conn.execute(_LINKS_SQL, list(cats.values()))
    await conn.execute(f"DROP SCHEMA {STAGE} CASCADE")
    await _long_documents(conn, g, user, scale.mine, scale.long)
    phase("category links and long documents written")

    # The shares: a third to the user, a third to one of their groups, a third to someone else.
    def grantee(n: int) -> tuple[str, uuid.UUID]:
        kind = n % 3
        if kind == 0:
            return "user", user
        if kind == 1:
            return "group", rng.choice(mine_groups)
        return rng.choice([("user", rng.choice(strangers)), ("group", rng.choice(groups[MEMBER_OF:]))])

    shares: list[tuple[Any, ...]] = []
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    now = datetime.now(UTC)
    for n in range(CATEGORY_SHARES):
        owner = others[n % len(others)]
        cat = other_cats[owner][(n // len(others)) % OTHER_CATEGORIES]
        while True:  # a category is shared once with a grantee (with one other owner, categories repeat)
            if n < CATEGORY_SHARES_REACHING:
                kind, who = ("user", user) if n % 2 == 0 else ("group", rng.choice(mine_groups))
            else:
                kind, who = (
                    ("user", rng.choice(strangers))
                    if n % 2 == 0
                    else ("group", rng.choice(groups[MEMBER_OF:]))
                )
            if (cat, who) not in seen:
                break
        seen.add((cat, who))
        shares.append((uuid.uuid4(), owner, None, cat, kind, who, "viewer", owner, now, now))
    for _ in range(100 * SHARES):
        if len(shares) == SHARES:
            break
        owner = rng.choice(others)
        doc = rng.choice(sample[owner])
        kind, who = grantee(len(shares))
        if (doc, who) in seen:
            continue
        seen.add((doc, who))
        role = rng.choice(["viewer", "editor"])
        shares.append((uuid.uuid4(), owner, doc, None, kind, who, role, owner, now, now))
    assert len(shares) == SHARES, "too few documents to draw the shares from"
    await conn.copy_records_to_table(
        "shares",
        schema_name="docs",
        columns=[
            "id",
            "owner_id",
            "document_id",
            "category_id",
            "grantee_type",
            "grantee_id",
            "role",
            "created_by",
            "created_at",
            "updated_at",
        ],
        records=shares,
    )
    await _rebuild(conns[:2], indexes)
    phase("indexes rebuilt")
    # What autovacuum would have done by now: statistics, and the visibility map for index-only scans.
    await _both(conns[:2], [[("VACUUM ANALYZE docs.documents",)], [("VACUUM ANALYZE docs.pages",)]])
    await conn.execute("VACUUM ANALYZE")
    phase("vacuumed and analyzed")
    return Data(user, mine_groups, cats, phases=phases)


async def _without_indexes(conn: asyncpg.Connection) -> list[tuple[str, int]]:
    """Drop the secondary indexes of the big tables (writing is much faster without); their definitions,
    and how big each is (GIN first when rebuilding: they take longest)."""
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef, am.amname FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_index x ON x.indexrelid = c.oid JOIN pg_am am ON am.oid = c.relam "
        "WHERE i.schemaname = 'docs' AND i.tablename = ANY($1) AND NOT x.indisprimary",
        list(TABLES_INDEXED),
    )
    for r in rows:
        await conn.execute(f'DROP INDEX docs."{r["indexname"]}"')
    return [(r["indexdef"], 0 if r["amname"] == "gin" else 1) for r in rows]


async def _rebuild(conns: list[asyncpg.Connection], indexes: list[tuple[str, int]]) -> None:
    """Build the dropped indexes, one per connection at a time (no parallel workers: two cores)."""
    queue = [definition for definition, _ in sorted(indexes, key=lambda d: d[1])]

    async def worker(conn: asyncpg.Connection) -> None:
        await conn.execute("SET max_parallel_maintenance_workers = 0")
        while queue:
            definition = queue.pop(0)
            t0 = time.perf_counter()
            await conn.execute(definition)
            print(f"    {time.perf_counter() - t0:6.1f} s  {definition[:100]}", flush=True)

    await asyncio.gather(*(worker(c) for c in conns))


async def counts(conn: asyncpg.Connection, data: Data) -> None:
    """What the database holds, as the report states it (read back, so a reused database says it too)."""
    principals = [data.user, *data.groups]
    data.shared_documents = await conn.fetchval(
        """SELECT count(DISTINCT d) FROM (
             SELECT s.document_id AS d FROM docs.shares s WHERE s.grantee_id = ANY($1) AND s.document_id IS NOT NULL
             UNION ALL
             SELECT dc.document_id FROM docs.shares s JOIN docs.document_categories dc
               ON dc.category_id = s.category_id AND dc.owner_id = s.owner_id WHERE s.grantee_id = ANY($1)) x""",
        principals,
    )
    data.counts = {
        "documents": await conn.fetchval("SELECT count(*) FROM docs.documents"),
        "mine": await conn.fetchval("SELECT count(*) FROM docs.documents WHERE owner_id = $1", data.user),
        "owners": await conn.fetchval("SELECT count(DISTINCT owner_id) FROM docs.documents"),
        "pages": await conn.fetchval("SELECT count(*) FROM docs.pages"),
        "shares": await conn.fetchval("SELECT count(*) FROM docs.shares"),
        "reaching": await conn.fetchval(
            "SELECT count(*) FROM docs.shares WHERE grantee_id = ANY($1)", principals
        ),
        "category shares reaching": await conn.fetchval(
            "SELECT count(*) FROM docs.shares WHERE grantee_id = ANY($1) AND category_id IS NOT NULL",
            principals,
        ),
        "database bytes": await conn.fetchval("SELECT pg_database_size(current_database())"),
    }


async def _long_documents(
    conn: asyncpg.Connection, g: Generator, owner: uuid.UUID, n: int, count: int
) -> None:
    docs, pages = [], []
    for i in range(count):
        doc_id = uuid.uuid4()
        texts = [g.body(PAGE_WORDS) for _ in range(LONG_PAGES)]
        texts[g.rng.randint(20, LONG_PAGES) - 1] += f" {LONG_MARKER}"
        at = g.start + timedelta(minutes=g.rng.uniform(0, n))
        docs.append(
            (doc_id, owner, f"long-{i:04d}.pdf", str(doc_id), 2_000_000, uuid.uuid4().hex * 2, "ready",
             uuid.uuid4(), LONG_PAGES, "contract", f"Long {i}", None, None, "\n\n".join(texts), at, at)
        )  # fmt: skip
        pages += [(doc_id, owner, k + 1, t) for k, t in enumerate(texts)]
    await conn.copy_records_to_table("documents", schema_name="docs", columns=DOC_COLUMNS, records=docs)
    await conn.copy_records_to_table("pages", schema_name="docs", columns=PAGE_COLUMNS, records=pages)


async def measure(db: Database, data: Data, runs: int) -> list[dict[str, Any]]:
    deps = deps_for(db)

    async def groups_of(_: Actor) -> tuple[uuid.UUID, ...]:
        return tuple(data.groups)

    deps.groups_of = groups_of
    ctx = Ctx(request_id="bench", actor=Actor(user_id=data.user, role="user", session_id="bench", token=""))
    rows: list[dict[str, Any]] = []
    cursors = {
        scope: (await list_documents(ListDocuments(limit=50, scope=scope), ctx, deps)).next_cursor
        for scope in ("mine", "all")
    }
    extra: list[tuple[str, dict[str, Any]]] = [
        ("shared with me only, newest 50", {"scope": "shared"}),
        ("shared with me only, full text, common word", {"scope": "shared", "q": "garden"}),
    ]
    for name, params in [*SCENARIOS(data.cats, None), *extra]:
        load = os.getloadavg()[0]
        result: dict[str, Any] = {"name": name, "load": load}
        for label, scope in (("without", "mine"), ("with", "all")):
            if "scope" in params:
                if label == "without":
                    continue
                scope = params["scope"]
            query = {**{k: v for k, v in params.items() if k != "scope"}, "scope": scope}
            if name.startswith("page 2"):
                query["cursor"] = cursors[scope]
            cmd = ListDocuments(limit=50, **query)
            page = await list_documents(cmd, ctx, deps)

            async def one(cmd: ListDocuments = cmd) -> None:
                await list_documents(cmd, ctx, deps)

            result[label] = {
                "total": page.total,
                "exact": page.total_exact,
                **summary(await timed(one, runs)),
            }
        result["load_after"] = os.getloadavg()[0]
        rows.append(result)
        print(
            f"{name}: {result.get('without', {}).get('p95', float('nan')):.1f} / {result['with']['p95']:.1f} ms p95 (load {load:.1f})",
            flush=True,
        )
    return rows


def report(scale: Scale, data: Data, rows: list[dict[str, Any]], runs: int, fill_s: float) -> str:
    def ms(r: dict[str, Any] | None) -> str:
        return "—" if r is None else f"{r['median']:.1f} / {r['p95']:.1f}"

    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in data.phases.items())
    load = f" at load {data.fill_load[0]:.1f}–{data.fill_load[1]:.1f}" if data.fill_load else ""
    fill = (
        f"filled in {fill_s:.0f} s{load} ({steps}; texts drawn in Python and staged, documents and pages "
        "written by INSERT … SELECT on two connections, secondary indexes rebuilt after, see the script)"
    )
    if data.reused:
        fill = f"a database kept from an earlier run (`--keep`) and migrated to the head revision, {fill}"
    size_gb = data.counts["database bytes"] / 1e9
    worst = max(r["with"]["p95"] for r in rows)
    worst_without = max(r["without"]["p95"] for r in rows if "without" in r)
    lines = [
        f"## Documents: list and search with sharing, {scale.title}",
        "",
        f"`python -m bench.bench_sharing --scale {scale.name}` — own embedded PostgreSQL 17 (shared_buffers "
        f"128 MB, fsync on), {fill}: {data.counts['documents']:,} documents of {data.counts['owners']} owners "
        f"(the measured user owns {scale.mine:,} plus {scale.long} long ones, as in bench_list), "
        f"{data.counts['pages']:,} pages, {size_gb:.1f} GB on disk; {data.counts['shares']:,} shares "
        f"({CATEGORY_SHARES} of whole categories); the measured user is in {MEMBER_OF} of {GROUPS} groups and "
        f"{data.counts['reaching']:,} shares reach them ({data.counts['category shares reaching']} of them "
        f"categories), {data.shared_documents:,} documents shared with them in all. Each scenario runs through the "
        "documents service's list handler with row-level security on: *without sharing* is the user's own "
        "documents (`scope=mine`, bench_list's statement), *with sharing* their own and those shared with them "
        f"(`scope=all`, the default: whether anything is shared with them is asked first, then one statement: "
        "a page of their own, and the documents shared with them sorted by the keys document_access copies and "
        f"probed in that order until a page matches). {runs} runs each, "
        "alternating, after a warm-up; median / p95 in ms. Load: the 1-minute load average of the 2-core "
        f"machine when the row started. Goal: p95 under {GOAL_P95_MS:.0f} ms.",
        "",
        "| scenario | matches with sharing | without sharing | with sharing | with ÷ without (median) | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        w = r["with"]
        total = f"{w['total']:,}" + ("" if w["exact"] else "+")
        ratio = f"{w['median'] / r['without']['median']:.2f}" if "without" in r else "—"
        lines.append(
            f"| {r['name']} | {total} | {ms(r.get('without'))} | {ms(w)} | {ratio} | {r['load']:.1f} |"
        )
    verdict = "met" if worst < GOAL_P95_MS else "NOT met"
    lines += [
        "",
        f"Worst p95 with sharing: {worst:.1f} ms (without: {worst_without:.1f} ms) — goal {verdict} at this load.",
    ]
    return "\n".join(lines)


FILL_RECORD = "bench-sharing.json"  # in a kept data directory: what was filled, for the runs that reuse it


async def _configure(conn: asyncpg.Connection, settings: dict[str, str | None]) -> None:
    """Set (or with None reset) server settings, as ALTER SYSTEM does, and reload them."""
    for name, value in settings.items():
        await conn.execute(f"ALTER SYSTEM SET {name} = {value}" if value else f"ALTER SYSTEM RESET {name}")
    await conn.execute("SELECT pg_reload_conf()")


async def fill_or_reuse(pg: EmbeddedPostgres, scale: Scale, data_dir: Path) -> tuple[Data, float]:
    """Fill the database for `scale`, or reuse the one a previous run filled in `data_dir` (its record says
    which user is measured); returns the data and the fill's seconds (a reused database's original fill)."""
    url = superuser_url(pg).replace("postgresql+asyncpg", "postgresql")
    record = data_dir / FILL_RECORD
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        if record.exists():
            kept = json.loads(record.read_text())
            if kept["scale"] != scale.name:
                raise SystemExit(
                    f"{data_dir} holds the {kept['scale']} fill, not {scale.name}: use another --keep"
                )
            data = Data(
                uuid.UUID(kept["user"]),
                [uuid.UUID(g) for g in kept["groups"]],
                {name: uuid.UUID(c) for name, c in kept["cats"].items()},
                phases=kept["phases"],
                fill_load=kept.get("fill_load", []),
                reused=True,
            )
            print(
                f"reusing the {scale.name} fill in {data_dir} (filled in {kept['fill_s']:.0f} s)", flush=True
            )
            # A migration since the fill may have rewritten rows (0015 fills document_access's sort keys):
            # vacuumed and analyzed as autovacuum would soon do, so the plans measured are a settled database's.
            await conns[0].execute("VACUUM (ANALYZE)")
            await counts(conns[0], data)
            return data, kept["fill_s"]
        if await conns[0].fetchval("SELECT count(*) FROM docs.documents"):
            raise SystemExit(
                f"{data_dir} holds documents but no {FILL_RECORD} (an interrupted fill?): delete it"
            )
        # Fewer checkpoints while writing gigabytes (they would log each touched index page again); set back
        # after. The tables stay logged and fsync stays on: what is measured is an ordinary database.
        await _configure(conns[0], {"max_wal_size": "'8GB'", "checkpoint_timeout": "'30min'"})
        for conn in conns:
            await conn.execute("SET maintenance_work_mem = '1GB'; SET synchronous_commit = off")
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        data = await generate(conns, scale)
        fill_s = time.perf_counter() - t0
        data.fill_load = [load_before, os.getloadavg()[0]]
        await _configure(conns[0], {"max_wal_size": None, "checkpoint_timeout": None})
        await conns[0].execute("CHECKPOINT")
        await counts(conns[0], data)
        record.write_text(
            json.dumps(
                {
                    "scale": scale.name,
                    "user": str(data.user),
                    "groups": [str(g) for g in data.groups],
                    "cats": {name: str(c) for name, c in data.cats.items()},
                    "fill_s": fill_s,
                    "phases": data.phases,
                },
                indent=1,
            )
        )
        return data, fill_s
    finally:
        for conn in conns:
            await conn.close()


async def run(scale: Scale, runs: int, keep: Path | None) -> tuple[Data, list[dict[str, Any]], float]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-sharing-") as tmp:
        data_dir = keep or Path(tmp)
        pg = EmbeddedPostgres(data_dir).start()
        try:
            urls = await provision(pg.admin_url, data_dir)
            # A kept database is brought to the head revision too (a migration since its fill applies).
            await migrations.upgrade("docs", urls["docs"], "docs")
            data, fill_s = await fill_or_reuse(pg, scale, data_dir)
            print(
                f"filled in {fill_s:.0f} s: {data.counts}, shared with the user: {data.shared_documents}",
                flush=True,
            )
            db = Database(urls["docs"], "docs")
            try:
                rows = await measure(db, data, runs)
            finally:
                await db.dispose()
            return data, rows, fill_s
        finally:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="a data directory to keep (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    data, rows, fill_s = asyncio.run(run(scale, args.runs, args.keep))
    publish(
        f"docs-sharing-{scale.name}", report(scale, data, rows, args.runs, fill_s), write=not args.no_write
    )


if __name__ == "__main__":
    main()
