"""Rate limits shared by every process of a service (services/kit/ratelimit.py `SharedRateLimiter`): two
limiters on two database pools — two documents processes — together allow exactly the limit, also when
many attempts arrive at once; the window slides; Retry-After says when a slot frees; old windows go. And
over HTTP: with a second documents process beside the harness's, share-link password guessing from one
address is still refused after the limit."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio

from contracts import RateLimited
from services.docs.handlers import links, sharing
from services.docs.tables import rate_limits
from services.kit.db import Database
from services.kit.ratelimit import (
    BASE_DELAY_S,
    KEEP_BEYOND_LIMIT,
    MAX_DELAY_S,
    Rule,
    SharedRateLimiter,
    prune_rate_limits,
)
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.security.test_share_links import forget_visitors, make_link, refused

RULES = {"guess": Rule(5, 60), "burst": Rule(10, 600), "some_ip": Rule(2, 60)}


@pytest.fixture(autouse=True)
def needs_docs_db(stack: Stack) -> None:
    if "docs" not in stack.db_urls:
        pytest.skip("needs the docs database")


@pytest_asyncio.fixture
async def two_pools(stack: Stack) -> AsyncIterator[tuple[Database, Database]]:
    """Two databases objects (each its own pool of connections), as two documents processes have."""
    a, b = Database(stack.db_urls["docs"], "docs"), Database(stack.db_urls["docs"], "docs")
    yield a, b
    await a.dispose()
    await b.dispose()


class Clock:
    """Seconds since the epoch, moved by the test (a fresh far-away start per test: no window is shared)."""

    def __init__(self) -> None:
        self.now = 4_000_000_000.0 + uuid.uuid4().int % 1_000_000

    def __call__(self) -> float:
        return self.now


def limiters(clock: Callable[[], float] | None = None) -> tuple[SharedRateLimiter, SharedRateLimiter]:
    return (
        SharedRateLimiter(rate_limits, RULES, frozenset({"127.0.0.1"}), clock=clock),
        SharedRateLimiter(rate_limits, RULES, frozenset({"127.0.0.1"}), clock=clock),
    )


async def admitted(limiter: SharedRateLimiter, db: Database, rule: str, key: str) -> bool:
    try:
        await limiter.take(db, rule, key)
    except RateLimited:
        return False
    return True


async def test_two_processes_together_allow_exactly_the_limit(two_pools: tuple[Database, Database]) -> None:
    clock, key = Clock(), str(uuid.uuid4())
    (a, b), (db_a, db_b) = limiters(clock), two_pools
    outcomes = []
    for i in range(8):  # alternating, as a load-balanced visitor's requests land
        limiter, db = (a, db_a) if i % 2 == 0 else (b, db_b)
        outcomes.append(await admitted(limiter, db, "guess", key))
    assert outcomes == [True] * 5 + [False] * 3
    # The check of either sees the full window; another key is untouched.
    for limiter, db in ((a, db_a), (b, db_b)):
        with pytest.raises(RateLimited):
            await limiter.check(db, "guess", key)
        assert await limiter.count(db, "guess", key) == 5
    await a.check(db_a, "guess", str(uuid.uuid4()))


async def test_many_concurrent_attempts_never_get_past_the_limit(
    two_pools: tuple[Database, Database],
) -> None:
    (a, b), (db_a, db_b) = limiters(), two_pools  # the database's own clock
    for _ in range(3):  # a fresh key each round: the first attempts race to insert its row
        key = str(uuid.uuid4())
        results = await asyncio.gather(
            *(admitted(a if i % 2 else b, db_a if i % 2 else db_b, "burst", key) for i in range(60))
        )
        assert sum(results) == 10
        assert await a.count(db_a, "burst", key) == 10
    # Hits alone (failures counted whatever the window holds) are never lost either.
    key = str(uuid.uuid4())
    await asyncio.gather(*(a.hit(db_a if i % 2 else db_b, "guess", key) for i in range(4)))
    assert await b.count(db_b, "guess", key) == 4


async def test_the_window_slides_and_retry_after_is_exact(two_pools: tuple[Database, Database]) -> None:
    clock, key = Clock(), str(uuid.uuid4())
    (a, b), (db_a, db_b) = limiters(clock), two_pools
    start = clock.now
    for i in range(5):  # one attempt every 10 s: 0, 10, 20, 30, 40
        clock.now = start + 10 * i
        await (a if i % 2 else b).take(db_a if i % 2 else db_b, "guess", key)
    clock.now = start + 45
    with pytest.raises(RateLimited) as refused_at_45:
        await b.take(db_b, "guess", key)
    # The first attempt (at 0) leaves the 60 s window at 60: 15 s from now.
    assert refused_at_45.value.details == {"retry_after_s": 15}
    with pytest.raises(RateLimited) as checked:
        await a.check(db_a, "guess", key)
    assert checked.value.details == {"retry_after_s": 15}
    clock.now = start + 59.5
    with pytest.raises(RateLimited) as almost:
        await a.take(db_a, "guess", key)
    assert almost.value.details == {"retry_after_s": 1}  # never less than a second
    clock.now = start + 60  # the attempt at 0 is out: exactly one slot
    assert await admitted(a, db_a, "guess", key)
    assert not await admitted(b, db_b, "guess", key)
    clock.now = start + 70  # the one at 10 left too
    assert await admitted(b, db_b, "guess", key)
    assert await a.count(db_a, "guess", key) == 5  # 20, 30, 40, 60, 70


async def test_failures_past_the_limit_refuse_until_enough_of_them_left(
    two_pools: tuple[Database, Database],
) -> None:
    """Hits go on counting past the limit (failures); a check frees up only once the window is below it."""
    clock, key = Clock(), str(uuid.uuid4())
    (a, _), (db, _) = limiters(clock), two_pools
    start = clock.now
    for i in range(7):  # 0 … 6: two past the limit of 5
        clock.now = start + i
        await a.hit(db, "guess", key)
    clock.now = start + 10
    with pytest.raises(RateLimited) as refused_now:
        await a.check(db, "guess", key)
    # Below the limit again once the events at 0, 1 and 2 have left (at 62): 52 s.
    assert refused_now.value.details == {"retry_after_s": 52}
    clock.now = start + 62
    await a.check(db, "guess", key)
    # The progressive delay counts past the limit; a window keeps only what any answer needs.
    clock.now = start + 63
    for _ in range(20):
        await a.hit(db, "guess", key)
    assert await a.count(db, "guess", key) == 5 + KEEP_BEYOND_LIMIT
    assert await a.delay_s(db, "guess", key) == MAX_DELAY_S
    fresh = str(uuid.uuid4())
    assert await a.delay_s(db, "guess", fresh) == 0.0
    for _ in range(5):
        await a.hit(db, "guess", fresh)
    assert await a.delay_s(db, "guess", fresh) == BASE_DELAY_S


async def test_exempt_addresses_and_unknown_rules_are_not_counted(
    two_pools: tuple[Database, Database],
) -> None:
    (a, _), (db, _) = limiters(Clock()), two_pools
    for _ in range(5):
        await a.take(db, "some_ip", "127.0.0.1")
        await a.take(db, "no_such_rule", "x")
    assert await a.count(db, "some_ip", "127.0.0.1") == 0
    await a.take(db, "some_ip", "10.9.8.7")
    await a.take(db, "some_ip", "10.9.8.7")
    with pytest.raises(RateLimited):
        await a.take(db, "some_ip", "10.9.8.7")


async def test_windows_whose_events_all_left_are_pruned(two_pools: tuple[Database, Database]) -> None:
    clock = Clock()
    (a, _), (db, _) = limiters(clock), two_pools
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    start = clock.now
    await a.hit(db, "guess", old)
    clock.now = start + 50
    await a.hit(db, "guess", recent)
    clock.now = start + 61  # `old`'s one event left its window; `recent`'s has not
    assert await prune_rate_limits(db, rate_limits, clock) >= 1
    rows = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE key = $1), count(*) FILTER (WHERE key = $2) FROM docs.rate_limits",
        old,
        recent,
    )
    assert rows is not None and tuple(rows) == (0, 1)


# ---- over HTTP, with a second documents process ------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def second_docs_process(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`python -m services.docs` beside the harness's in-process one: the bus spreads requests over both."""
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")
    log = tmp_path_factory.mktemp("docs-2") / "docs-2.log"
    proc = stack.start_process(
        "services.docs", log, ATRIUM_DATA=str(stack.data_dir), ATRIUM_DB_URL_DOCS=stack.db_urls["docs"]
    )
    try:
        while b"service started" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_link_password_guessing_is_limited_across_two_documents_processes(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, second_docs_process: subprocess.Popen[bytes]
) -> None:
    await forget_visitors(stack)
    doc = (await h.create(stack, new_user, "guarded.pdf")).document.id
    locked = await make_link(http, new_user, doc, password="open sesame")
    url = f"/share-links/{locked['token']}"
    limit = links.VISITORS.rules["link_fail_ip"].limit
    for _ in range(limit):  # each process would allow `limit` on its own: together they allow it once
        refused(await http.post(url, json={"password": "a wrong guess"}))
    r = await http.post(url, json={"password": "open sesame"})  # even the right one, from this address
    assert r.status_code == 429, r.text
    retry = r.json()["error"]["details"]["retry_after_s"]
    assert 0 < retry <= links.VISITORS.rules["link_fail_ip"].window_s
    assert int(r.headers["Retry-After"]) == retry
    for _ in range(6):  # whichever process answers
        assert (await http.get(url)).status_code == 429
    await forget_visitors(stack)
    assert (await http.post(url, json={"password": "open sesame"})).status_code == 200


async def test_share_by_email_lookups_are_limited_across_two_documents_processes(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, second_docs_process: subprocess.Popen[bytes]
) -> None:
    doc = (await h.create(stack, new_user, "asked.pdf")).document.id
    url = f"/documents/{doc}/shares"
    for i in range(sharing.LOOKUPS.rules["unknown_email"].limit):
        r = await http.post(
            url, headers=new_user.headers, json={"email": f"nobody-{i}@example.com", "role": "viewer"}
        )
        assert r.status_code == 404 and r.json()["error"]["details"] == {"field": "email"}, r.text
    for _ in range(4):  # whichever process answers, even for an address that exists
        r = await http.post(url, headers=new_user.headers, json={"email": new_user.email, "role": "viewer"})
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 600, r.text
