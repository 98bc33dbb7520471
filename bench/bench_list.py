"""Listing documents with filters and full-text search over 100,000 documents.

Starts its own embedded PostgreSQL, migrates the docs schema and fills it with a generator: 100,000
documents of one owner (plus 20,000 of another, so owner scoping has something to skip), each with
~120 words of text from a fixed vocabulary (one page), a type, a sender, a document date and 0–2 of 6
categories; and 300 long documents (40 pages, ~100,000 characters each), where snippets cost the most.
Then it runs the documents service's own list handler (`services.docs.handlers.documents.
list_documents`, its statement built by `handlers/search.py`: the SQL the `docs.document.list` Rpc runs,
with the total count, categories and snippets) for each scenario and reports median and p95. The
baseline, measured in the same run, is the cheapest possible page:
`SELECT … WHERE owner_id = $1 ORDER BY created_at DESC LIMIT 50`.

    python -m bench.bench_list [--documents 100000] [--runs 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from bench.results import publish, summary
from contracts.docs_api import ListDocuments
from infra.embedded import EmbeddedPostgres, provision
from services.docs import tables
from services.docs.handlers import search
from services.docs.handlers.common import Blobs, DocsDeps
from services.docs.handlers.documents import list_documents
from services.docs.tables import categories, document_categories, documents, pages
from services.kit import metrics, migrations
from services.kit.bus import Ctx
from services.kit.db import Database
from services.kit.outbox import Outbox
from services.kit.security import Actor

GOAL_P95_MS = 50.0
TYPES = ["invoice", "receipt", "contract", "letter", "bank_statement", "payslip", "tax_document", "other"]
CATEGORY_NAMES = ["Home", "Bills", "Work", "Taxes", "Insurance", "Car"]
RARE = "zanzibarquartz"  # one document in ~10,000 carries it
LONG_MARKER = "ledgerquartz"  # on one page (20–40) of each long document
LONG_DOCUMENTS, LONG_PAGES, PAGE_WORDS = 300, 40, 400  # ~2,500 characters a page, ~100,000 a document


def SCENARIOS(cats: dict[str, uuid.UUID], next_cursor: str | None) -> list[tuple[str, dict[str, Any]]]:  # noqa: N802
    """The list goal's scenarios (bench/bench_sharing.py runs them too): filters, sorts and searches."""
    return [
        ("newest 50, no filter", {}),
        ("page 2 (keyset cursor)", {"cursor": next_cursor}),
        (
            "status + type + document date range",
            {
                "status": ["ready"],
                "document_type": ["invoice", "receipt"],
                "date_from": date(2023, 1, 1),
                "date_to": date(2023, 12, 31),
            },
        ),
        ("category any-of (2)", {"category_any": [cats["Bills"], cats["Taxes"]]}),
        ("category all-of (2)", {"category_all": [cats["Bills"], cats["Taxes"]]}),
        ("sender starts with", {"sender": "sender 1"}),
        ("full text, common word, newest first", {"q": "garden"}),
        ("full text, two words, by relevance", {"q": "garden salary", "sort": "relevance"}),
        ("full text, common word, by relevance", {"q": "garden", "sort": "relevance"}),
        # ~5 % of documents: the ranked candidates are spread widest here (see the report text).
        ("full text, mid-frequency word, by relevance", {"q": "salary", "sort": "relevance"}),
        ("full text, rare word", {"q": RARE}),
        (
            f"full text, a word on one page of {LONG_DOCUMENTS} long documents (snippets)",
            {"q": LONG_MARKER},
        ),
        (
            "full text + type + category",
            {"q": "insurance", "document_type": ["contract"], "category_any": [cats["Insurance"]]},
        ),
        ("sort by title, ascending", {"sort": "title", "order": "asc"}),
    ]


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size * 2)}
    ordered = sorted(words)[:size]
    # The words the scenarios search for sit at ranks where they occur in roughly 3–25 % of documents.
    for rank, word in (
        (30, "invoice"),
        (60, "payment"),
        (120, "garden"),
        (250, "salary"),
        (400, "insurance"),
        (600, "contract"),
        (900, "electricity"),
        (1500, "amount"),
    ):
        ordered.insert(rank, word)
    return ordered


async def generate(
    db: Database, owner: uuid.UUID, other: uuid.UUID, n: int, seed: int = 7
) -> dict[str, uuid.UUID]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    # Zipf-like word frequencies: a few words are everywhere, most are rare (like real text).
    weights = [1.0 / (i + 1) for i in range(len(words))]
    senders = [f"Sender {i} {rng.choice(words).title()}" for i in range(200)]
    cats = {name: uuid.uuid4() for name in CATEGORY_NAMES}
    async with db.transaction() as s:
        await s.execute(
            insert(categories), [{"id": cid, "owner_id": owner, "name": name} for name, cid in cats.items()]
        )
    start = datetime(2021, 1, 1, tzinfo=UTC)
    batch = 5000
    for who, count in ((owner, n), (other, n // 5)):
        for offset in range(0, count, batch):
            rows, links, page_rows = [], [], []
            for i in range(offset, min(offset + batch, count)):
                doc_id = uuid.uuid4()
                body = " ".join(rng.choices(words, weights, k=120))
                if rng.random() < 0.0001:
                    body += f" {RARE}"
                rows.append(
                    {
                        "id": doc_id,
                        "owner_id": who,
                        "filename": f"doc-{i:06d}.pdf",
                        "object_name": str(doc_id),
                        "size": rng.randint(20_000, 5_000_000),
                        "sha256": uuid.uuid4().hex * 2,
                        "status": "ready"
                        if rng.random() < 0.95
                        else rng.choice(["failed", "needs_ocr", "queued"]),
                        "run_id": uuid.uuid4(),
                        "page_count": rng.randint(1, 20),
                        "document_type": rng.choice(TYPES),
                        "title": f"{rng.choice(words).title()} {rng.choice(words)}",
                        "sender": rng.choice(senders),
                        "document_date": date(2020, 1, 1) + timedelta(days=rng.randint(0, 5 * 365)),
                        "body_text": body,
                        "created_at": start + timedelta(minutes=i),
                        "updated_at": start + timedelta(minutes=i),
                    }
                )
                page_rows.append({"document_id": doc_id, "owner_id": who, "number": 1, "text": body})
                if who == owner:
                    for name in rng.sample(CATEGORY_NAMES, rng.randint(0, 2)):
                        links.append(
                            {
                                "document_id": doc_id,
                                "category_id": cats[name],
                                "source": "user",
                                "owner_id": owner,
                            }
                        )
            async with db.transaction() as s:
                await s.execute(insert(documents), rows)
                await s.execute(insert(pages), page_rows)
                if links:
                    await s.execute(insert(document_categories), links)
    await _long_documents(db, owner, rng, words, weights, start, n)
    # What autovacuum would have done by now: statistics, and the visibility map for index-only scans.
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    return cats


async def _long_documents(
    db: Database,
    owner: uuid.UUID,
    rng: random.Random,
    words: list[str],
    weights: list[float],
    start: datetime,
    n: int,
) -> None:
    """A few long documents (40 pages, ~100,000 characters), where a search's snippets cost the most,
    uploaded at random times among the others (as in a real archive)."""
    rows, page_rows = [], []
    for i in range(LONG_DOCUMENTS):
        doc_id = uuid.uuid4()
        texts = [" ".join(rng.choices(words, weights, k=PAGE_WORDS)) for _ in range(LONG_PAGES)]
        marked = rng.randint(20, LONG_PAGES) - 1
        texts[marked] += f" {LONG_MARKER}"
        rows.append(
            {
                "id": doc_id,
                "owner_id": owner,
                "filename": f"long-{i:04d}.pdf",
                "object_name": str(doc_id),
                "size": 2_000_000,
                "sha256": uuid.uuid4().hex * 2,
                "status": "ready",
                "run_id": uuid.uuid4(),
                "page_count": LONG_PAGES,
                "document_type": "contract",
                "title": f"Long {i}",
                "body_text": "\n\n".join(texts),
                "created_at": (at := start + timedelta(minutes=rng.uniform(0, n))),
                "updated_at": at,
            }
        )
        page_rows += [
            {"document_id": doc_id, "owner_id": owner, "number": n + 1, "text": t}
            for n, t in enumerate(texts)
        ]
    async with db.transaction() as s:
        await s.execute(insert(documents), rows)
        await s.execute(insert(pages), page_rows)


def superuser_url(pg: EmbeddedPostgres) -> str:
    """The `atrium` database as the superuser, who is not held to row-level security (data generators)."""
    return pg.admin_url.rsplit("/", 1)[0] + "/atrium"


def deps_for(db: Database) -> DocsDeps:
    async def allow(_: Actor) -> None:
        return None

    async def no_progress(*_: Any) -> None:
        return None

    return DocsDeps(
        db=db,
        blobs=Blobs(),
        settings=lambda: None,  # type: ignore[arg-type,return-value]
        check_access=allow,
        outbox=Outbox(tables.outbox, db, publish=no_progress),  # never used: queue_work is False
        publish_progress=no_progress,
        queue_work=False,
    )


async def timed(fn: Any, runs: int) -> list[float]:
    # The handler runs as in its service, whose start-up heap is frozen out of the collector's sight
    # (Service.start): else a full collection walking the bench's own heap lands in some timings.
    metrics.watch_runtime("bench")
    for _ in range(3):  # warm caches and the statement cache
        await fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def run(n: int, runs: int) -> tuple[list[dict[str, Any]], float, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-list-") as tmp:
        data = Path(tmp)
        pg = EmbeddedPostgres(data).start()
        try:
            urls = await provision(pg.admin_url, data)
            await migrations.upgrade("docs", urls["docs"], "docs")
            db = Database(urls["docs"], "docs")
            # Written as the database superuser: the service's own role is held to row-level security.
            loader = Database(superuser_url(pg), "docs")
            owner, other = uuid.uuid4(), uuid.uuid4()
            t0 = time.perf_counter()
            cats = await generate(loader, owner, other, n)
            await loader.dispose()
            fill_s = time.perf_counter() - t0
            deps = deps_for(db)
            ctx = Ctx(
                request_id="bench", actor=Actor(user_id=owner, role="user", session_id="bench", token="")
            )

            async def baseline() -> None:
                async with db.session() as s:
                    (
                        await s.execute(
                            select(documents.c.id, documents.c.filename, documents.c.status)
                            .where(documents.c.owner_id == owner)
                            .order_by(documents.c.created_at.desc())
                            .limit(50)
                        )
                    ).all()

            first_page = await list_documents(ListDocuments(limit=50), ctx, deps)
            scenarios = SCENARIOS(cats, first_page.next_cursor)
            load_before = os.getloadavg()[0]
            base = summary(await timed(baseline, runs))
            rows: list[dict[str, Any]] = [
                {"name": "baseline: plain newest-50 SELECT", "total": None, "exact": True, **base}
            ]
            for name, params in scenarios:
                cmd = ListDocuments(limit=50, **params)
                page = await list_documents(cmd, ctx, deps)

                async def one(cmd: ListDocuments = cmd) -> None:
                    await list_documents(cmd, ctx, deps)

                rows.append(
                    {
                        "name": name,
                        "total": page.total,
                        "exact": page.total_exact,
                        **summary(await timed(one, runs)),
                    }
                )
            for r in rows:
                r["ratio"] = r["median"] / base["median"]
            await db.dispose()
            return rows, fill_s, (load_before, os.getloadavg()[0])
        finally:
            pg.stop()


def report(rows: list[dict[str, Any]], n: int, runs: int, fill_s: float, load: tuple[float, float]) -> str:
    worst = max(r["p95"] for r in rows[1:])
    lines = [
        "## Documents: list with filters and full-text search over 100,000 documents",
        "",
        f"`python -m bench.bench_list` — own embedded PostgreSQL; generator: {n:,} documents of one owner "
        f"(+{n // 5:,} of another), ~120 Zipf-distributed words each, 6 categories, and {LONG_DOCUMENTS} long "
        f"documents ({LONG_PAGES} pages, ~100,000 characters each) (filled in {fill_s:.0f} s). "
        f"Each scenario is the documents service's list handler (`docs.document.list`: one SQL statement with the "
        f"page of 50, the total count — exact up to 1,000, “1,000+” beyond —, categories, and snippets (from "
        f"each row's first matching page) when searching; sorting by relevance ranks the newest {search.RANK_CANDIDATES} matches), {runs} runs after "
        "a warm-up. Baseline, same run: a bare `SELECT … WHERE owner_id ORDER BY created_at DESC LIMIT 50`. "
        f"Goal: p95 under 50 ms. Machine load (1-minute average, 2 cores shared with other work): {load[0]:.1f} "
        f"when the runs started, {load[1]:.1f} when they ended.",
        "",
        "| scenario | matches | median ms | p95 ms | × baseline (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        total = "" if r["total"] is None else f"{r['total']:,}" + ("" if r["exact"] else "+")
        lines.append(f"| {r['name']} | {total} | {r['median']:.1f} | {r['p95']:.1f} | {r['ratio']:.1f} |")
    verdict = "met" if worst < GOAL_P95_MS else "NOT met"
    lines += ["", f"Worst p95: {worst:.1f} ms — goal {verdict}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    rows, fill_s, load = asyncio.run(run(args.documents, args.runs))
    body = report(rows, args.documents, args.runs, fill_s, load)
    publish("docs-list", body)


if __name__ == "__main__":
    main()
