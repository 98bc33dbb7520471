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
The data is written with COPY as the database superuser (row-level security holds the service's own role),
the indexes built after. Each scenario then runs through the documents service's own list handler as the
measured user (row-level security on, the user's groups as the permissions service would give them):
"without sharing" lists only their own documents (`scope=mine`, the statement bench_list measures), "with
sharing" their own and those shared with them (`scope=all`, the default), alternating, `--runs` times each
after a warm-up. The 1-minute load average is printed beside each row: the machine may be shared.

    python -m bench.bench_sharing [--scale 100k|1m] [--runs 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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
BATCH = 20_000
SAMPLE = 2_000  # documents per other owner that document shares are drawn from
TABLES_INDEXED = ("documents", "pages", "document_categories")


@dataclass(frozen=True)
class Scale:
    name: str
    title: str
    mine: int  # the measured user's documents
    others: int  # how many other owners
    per_other: int  # documents each


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

    def document(self, owner: uuid.UUID, i: int, minutes: float) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        rng = self.rng
        doc_id = uuid.uuid4()
        body = self.body(120)
        if rng.random() < 0.0001:
            body += f" {RARE}"
        at = self.start + timedelta(minutes=minutes)
        status = "ready" if rng.random() < 0.95 else rng.choice(["failed", "needs_ocr", "queued"])
        row = (
            doc_id,
            owner,
            f"doc-{i:06d}.pdf",
            str(doc_id),
            rng.randint(20_000, 5_000_000),
            uuid.uuid4().hex * 2,
            status,
            uuid.uuid4(),
            rng.randint(1, 20),
            rng.choice(TYPES),
            f"{rng.choice(self.words).title()} {rng.choice(self.words)}",
            rng.choice(self.senders),
            date(2020, 1, 1) + timedelta(days=rng.randint(0, 5 * 365)),
            body,
            at,
            at,
        )
        return row, (doc_id, owner, 1, body)


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


async def _without_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the secondary indexes of the big tables (COPY is much faster without); their definitions."""
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.schemaname = 'docs' AND i.tablename = ANY($1) "
        "AND NOT x.indisprimary",
        list(TABLES_INDEXED),
    )
    for r in rows:
        await conn.execute(f'DROP INDEX docs."{r["indexname"]}"')
    return [r["indexdef"] for r in rows]


async def generate(conn: asyncpg.Connection, scale: Scale, seed: int = 7) -> Data:
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
    # Shared documents are drawn from what each other owner has: keep a sample of ids as they are written.
    sample: dict[uuid.UUID, list[uuid.UUID]] = {o: [] for o in others}
    owners = [(user, scale.mine)] + [(o, scale.per_other) for o in others]
    minutes = scale.mine  # every owner's uploads spread over the same years
    for owner, count in owners:
        for offset in range(0, count, BATCH):
            docs, pages, links = [], [], []
            for i in range(offset, min(offset + BATCH, count)):
                row, page = g.document(owner, i, i * minutes / count)
                docs.append(row)
                pages.append(page)
                if owner == user:
                    for name in rng.sample(CATEGORY_NAMES, rng.randint(0, 2)):
                        links.append((row[0], cats[name], "user", user))
                else:
                    if rng.random() < 0.5:
                        links.append((row[0], rng.choice(other_cats[owner]), "user", owner))
                    if len(sample[owner]) < SAMPLE and rng.random() < 0.2:
                        sample[owner].append(row[0])
            await conn.copy_records_to_table(
                "documents", schema_name="docs", columns=DOC_COLUMNS, records=docs
            )
            await conn.copy_records_to_table("pages", schema_name="docs", columns=PAGE_COLUMNS, records=pages)
            await conn.copy_records_to_table(
                "document_categories",
                schema_name="docs",
                columns=["document_id", "category_id", "source", "owner_id"],
                records=links,
            )
    await _long_documents(conn, g, user, scale.mine)

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
        if n < CATEGORY_SHARES_REACHING:
            kind, who = ("user", user) if n % 2 == 0 else ("group", rng.choice(mine_groups))
        else:
            kind, who = (
                ("user", rng.choice(strangers)) if n % 2 == 0 else ("group", rng.choice(groups[MEMBER_OF:]))
            )
        cat = other_cats[owner][(n // len(others)) % OTHER_CATEGORIES]
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
    for definition in indexes:
        await conn.execute(definition)
    await conn.execute("VACUUM ANALYZE")
    principals = [user, *mine_groups]
    shared = await conn.fetchval(
        """SELECT count(DISTINCT d) FROM (
             SELECT s.document_id AS d FROM docs.shares s WHERE s.grantee_id = ANY($1) AND s.document_id IS NOT NULL
             UNION ALL
             SELECT dc.document_id FROM docs.shares s JOIN docs.document_categories dc
               ON dc.category_id = s.category_id AND dc.owner_id = s.owner_id WHERE s.grantee_id = ANY($1)) x""",
        principals,
    )
    counts = {
        "documents": await conn.fetchval("SELECT count(*) FROM docs.documents"),
        "shares": await conn.fetchval("SELECT count(*) FROM docs.shares"),
        "reaching": await conn.fetchval(
            "SELECT count(*) FROM docs.shares WHERE grantee_id = ANY($1)", principals
        ),
        "category shares reaching": await conn.fetchval(
            "SELECT count(*) FROM docs.shares WHERE grantee_id = ANY($1) AND category_id IS NOT NULL",
            principals,
        ),
    }
    return Data(user, mine_groups, cats, shared_documents=shared, counts=counts)


async def _long_documents(conn: asyncpg.Connection, g: Generator, owner: uuid.UUID, n: int) -> None:
    docs, pages = [], []
    for i in range(LONG_DOCUMENTS):
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

    worst = max(r["with"]["p95"] for r in rows)
    worst_without = max(r["without"]["p95"] for r in rows if "without" in r)
    lines = [
        f"## Documents: list and search with sharing, {scale.title}",
        "",
        f"`python -m bench.bench_sharing --scale {scale.name}` — own embedded PostgreSQL, written with COPY as the "
        f"superuser in {fill_s:.0f} s: {data.counts['documents']:,} documents (the measured user owns "
        f"{scale.mine:,} plus {LONG_DOCUMENTS} long ones, as in bench_list), {data.counts['shares']:,} shares "
        f"({CATEGORY_SHARES} of whole categories); the measured user is in {MEMBER_OF} of {GROUPS} groups and "
        f"{data.counts['reaching']:,} shares reach them ({data.counts['category shares reaching']} of them "
        f"categories), {data.shared_documents:,} documents shared with them in all. Each scenario runs through the "
        "documents service's list handler with row-level security on: *without sharing* is the user's own "
        "documents (`scope=mine`, bench_list's statement), *with sharing* their own and those shared with them "
        f"(`scope=all`, the default: the shares naming them are read first, then one statement with a branch "
        f"per share source). {runs} runs each, "
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


async def run(scale: Scale, runs: int, keep: Path | None) -> tuple[Data, list[dict[str, Any]], float]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-sharing-") as tmp:
        data_dir = keep or Path(tmp)
        pg = EmbeddedPostgres(data_dir).start()
        try:
            urls = await provision(pg.admin_url, data_dir)
            await migrations.upgrade("docs", urls["docs"], "docs")
            conn = await asyncpg.connect(superuser_url(pg).replace("postgresql+asyncpg", "postgresql"))
            try:
                await conn.execute("SET maintenance_work_mem = '512MB'")
                t0 = time.perf_counter()
                data = await generate(conn, scale)
                fill_s = time.perf_counter() - t0
            finally:
                await conn.close()
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
