"""bench/bench_sharing.py's generator at a tiny scale, in its own embedded PostgreSQL: it writes the counts
the report states (owners, documents, pages, shares and those reaching the measured user), with the same
text vocabulary and word frequencies, categories and columns as the 100k and 1m scales, and a kept data
directory is reused (not filled again) by the next run."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bench import bench_sharing as bs
from bench.bench_list import LONG_MARKER, RARE, superuser_url, vocabulary
from infra.embedded import EmbeddedPostgres, provision
from services.kit import migrations

TINY = bs.Scale("tiny", "a test's", mine=2_000, others=3, per_other=1_500, long=4)


def expected_reaching() -> int:
    """Shares naming the measured user or a group of theirs: the category shares that reach them, and of
    the document shares (numbered from CATEGORY_SHARES on) the two kinds in three that do."""
    documents = range(bs.CATEGORY_SHARES, bs.SHARES)
    return bs.CATEGORY_SHARES_REACHING + sum(1 for n in documents if n % 3 in (0, 1))


def share_with(word: str, words: int = 120) -> float:
    """The expected share of generated texts (`words` drawn by the Zipf weights) that contain `word`."""
    vocab = vocabulary(random.Random(7))
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    p = weights[vocab.index(word)] / sum(weights)
    return 1 - (1 - p) ** words


@pytest.fixture
async def filled(tmp_path: Path):  # type: ignore[no-untyped-def]
    pg = EmbeddedPostgres(tmp_path).start()
    try:
        urls = await provision(pg.admin_url, tmp_path)
        await migrations.upgrade("docs", urls["docs"], "docs")
        data, _ = await bs.fill_or_reuse(pg, TINY, tmp_path)
        conn = await asyncpg.connect(superuser_url(pg).replace("postgresql+asyncpg", "postgresql"))
        try:
            yield pg, data, conn
        finally:
            await conn.close()
    finally:
        pg.stop()


async def test_the_fill_writes_the_promised_counts(filled) -> None:  # type: ignore[no-untyped-def]
    _, data, conn = filled
    generated = TINY.mine + TINY.others * TINY.per_other
    assert data.counts["documents"] == generated + TINY.long
    assert data.counts["mine"] == TINY.mine + TINY.long
    assert data.counts["owners"] == 1 + TINY.others
    assert data.counts["pages"] == generated + TINY.long * bs.LONG_PAGES
    assert data.counts["shares"] == bs.SHARES
    assert data.counts["reaching"] == expected_reaching()
    assert data.counts["category shares reaching"] == bs.CATEGORY_SHARES_REACHING
    assert len(data.groups) == bs.MEMBER_OF and set(data.cats) == set(bs.CATEGORY_NAMES)
    assert data.shared_documents > 0
    per_owner = await conn.fetch("SELECT owner_id, count(*) AS n FROM docs.documents GROUP BY owner_id")
    assert sorted(r["n"] for r in per_owner) == sorted(
        [TINY.mine + TINY.long] + [TINY.per_other] * TINY.others
    )
    category_shares = await conn.fetchval("SELECT count(*) FROM docs.shares WHERE category_id IS NOT NULL")
    assert category_shares == bs.CATEGORY_SHARES
    # A shared document or category is its owner's, never the measured user's own.
    foreign = await conn.fetchval(
        """SELECT count(*) FROM docs.shares s
           LEFT JOIN docs.documents d ON d.id = s.document_id LEFT JOIN docs.categories c ON c.id = s.category_id
           WHERE coalesce(d.owner_id, c.owner_id) IS DISTINCT FROM s.owner_id OR s.owner_id = $1""",
        data.user,
    )
    assert foreign == 0
    # The scratch schema of the staged texts is gone, the dropped indexes are back.
    assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", bs.STAGE) == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'docs' AND indexname = 'ix_document_search_owner_type_search'"
    )


async def test_documents_look_like_bench_lists(filled) -> None:  # type: ignore[no-untyped-def]
    _, data, conn = filled
    mine = "d.owner_id = $1 AND d.filename LIKE 'doc-%'"
    # Each generated document has one page holding its text, and both search vectors.
    mismatched = await conn.fetchval(
        """SELECT count(*) FROM docs.documents d LEFT JOIN docs.pages p ON p.document_id = d.id AND p.number = 1
           LEFT JOIN docs.document_search s ON s.document_id = d.id
           WHERE d.filename LIKE 'doc-%' AND (p.text IS DISTINCT FROM d.body_text OR s.search IS NULL
                 OR s.rank_vector IS NULL OR p.search IS NULL)"""
    )
    assert mismatched == 0
    # The same vocabulary and word frequencies: the searched words occur as often as the weights say.
    for word in ("garden", "salary", "insurance"):
        share = await conn.fetchval(
            f"SELECT avg((s.search @@ to_tsquery('simple', $2))::int) FROM docs.documents d"
            f" JOIN docs.document_search s ON s.document_id = d.id WHERE {mine}",
            data.user,
            word,
        )
        assert abs(float(share) - share_with(word)) < 0.035, word
    rare = await conn.fetchval(
        "SELECT count(*) FROM docs.document_search s WHERE s.search @@ to_tsquery('simple', $1)", RARE
    )
    assert rare < 10
    long_marked = await conn.fetchval(
        "SELECT count(DISTINCT document_id) FROM docs.pages WHERE search @@ to_tsquery('simple', $1)",
        LONG_MARKER,
    )
    assert long_marked == TINY.long
    stats = await conn.fetchrow(
        f"""SELECT avg((status = 'ready')::int) AS ready, count(DISTINCT document_type) AS types,
                  count(DISTINCT sender) AS senders, min(size) AS small, max(size) AS big,
                  min(document_date) AS first_date, max(document_date) AS last_date,
                  min(created_at) AS first, max(created_at) AS last, count(DISTINCT title) AS titles
           FROM docs.documents d WHERE {mine}""",
        data.user,
    )
    assert 0.92 < stats["ready"] < 0.98
    assert stats["types"] == len(bs.TYPES) and stats["senders"] > 150 and stats["titles"] > 1_900
    assert 20_000 <= stats["small"] and stats["big"] <= 5_000_000
    assert stats["first_date"].year == 2020 and stats["last_date"].year == 2024
    start = datetime(2021, 1, 1, tzinfo=UTC)
    assert stats["first"] == start and stats["last"] < start + timedelta(minutes=TINY.mine)
    # The measured user files a document under 0–2 of their categories (one on average); every other owner
    # half of theirs under one of their own folders.
    filed = await conn.fetch(
        """SELECT d.owner_id = $1 AS mine, count(dc.category_id) AS links
           FROM docs.documents d LEFT JOIN docs.document_categories dc ON dc.document_id = d.id
           WHERE d.filename LIKE 'doc-%' GROUP BY d.id, d.owner_id""",
        data.user,
    )
    mine_links = [r["links"] for r in filed if r["mine"]]
    others_links = [r["links"] for r in filed if not r["mine"]]
    assert set(mine_links) == {0, 1, 2} and 0.9 < sum(mine_links) / len(mine_links) < 1.1
    assert set(others_links) == {0, 1} and 0.45 < sum(others_links) / len(others_links) < 0.55
    misfiled = await conn.fetchval(
        """SELECT count(*) FROM docs.document_categories dc JOIN docs.documents d ON d.id = dc.document_id
           JOIN docs.categories c ON c.id = dc.category_id
           WHERE c.owner_id <> d.owner_id OR dc.owner_id <> d.owner_id"""
    )
    assert misfiled == 0
    per_category = await conn.fetch(
        """SELECT count(*) AS n FROM docs.document_categories dc WHERE dc.owner_id = $1
           GROUP BY dc.category_id""",
        data.user,
    )
    assert len(per_category) == len(bs.CATEGORY_NAMES)
    expected = TINY.mine / len(bs.CATEGORY_NAMES)  # one link a document on average, spread evenly
    assert all(abs(r["n"] - expected) < expected / 4 for r in per_category), [r["n"] for r in per_category]


async def test_a_kept_directory_is_reused_not_filled_again(filled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pg, data, conn = filled
    again, fill_s = await bs.fill_or_reuse(pg, TINY, tmp_path)
    assert (again.user, again.groups, again.cats) == (data.user, data.groups, data.cats)
    rows = {k: v for k, v in data.counts.items() if k != "database bytes"}  # the size moves a little
    assert {k: again.counts[k] for k in rows} == rows and again.shared_documents == data.shared_documents
    assert again.reused and not data.reused
    assert fill_s > 0 and again.phases == data.phases
    other = bs.Scale("other", "another scale", 10, 1, 10)
    with pytest.raises(SystemExit, match="holds the tiny fill"):
        await bs.fill_or_reuse(pg, other, tmp_path)
    assert json.loads((tmp_path / bs.FILL_RECORD).read_text())["user"] == str(data.user)


async def test_with_one_other_owner_each_category_is_shared_once_with_a_grantee(tmp_path: Path) -> None:
    """The 100k scale's shape: one other owner, whose ten categories carry all thirty category shares."""
    one_other = bs.Scale("one-other", "a test's", mine=1_000, others=1, per_other=3_000, long=1)
    pg = EmbeddedPostgres(tmp_path).start()
    try:
        urls = await provision(pg.admin_url, tmp_path)
        await migrations.upgrade("docs", urls["docs"], "docs")
        data, _ = await bs.fill_or_reuse(pg, one_other, tmp_path)
    finally:
        pg.stop()
    assert data.counts["shares"] == bs.SHARES and data.counts["owners"] == 2
    assert data.counts["reaching"] == expected_reaching()
    assert data.counts["category shares reaching"] == bs.CATEGORY_SHARES_REACHING
