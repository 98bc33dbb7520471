"""Password hashing is admitted as the cores allow (services/kit/passwords.py): one hash per slot at a
time, the others queued; a caller who would wait past the budget is refused at once with `unavailable`
and when to come back, and one whose turn does not come within the budget too."""

from __future__ import annotations

import asyncio
import threading

import pytest

from contracts import Unavailable
from services.kit.passwords import HashAdmission


async def test_a_hash_that_would_wait_too_long_is_refused_with_when_to_retry() -> None:
    gate = HashAdmission(at_once=1, budget_s=0.5)
    gate.seconds_per_hash = 3.0  # as if each hash took 3 s: the second would wait 3 s
    started, release = threading.Event(), threading.Event()
    first = asyncio.create_task(gate.run(lambda: started.set() or (release.wait(30) and "first")))
    assert await asyncio.to_thread(started.wait, 30)  # the first hash is running
    with pytest.raises(Unavailable) as refused:
        await gate.run(lambda: "second")
    assert refused.value.details == {"reason": "busy", "retry_after_s": 3}
    release.set()
    assert await first == "first"
    assert await gate.run(lambda: "after") == "after"  # the slot is free again
    assert (gate.running, gate.waiting) == (0, 0)


async def test_a_hash_whose_turn_does_not_come_within_the_budget_is_refused() -> None:
    gate = HashAdmission(at_once=1, budget_s=0.2)
    gate.seconds_per_hash = 0.01  # expected to be quick, so the second queues …
    started, release = threading.Event(), threading.Event()
    first = asyncio.create_task(gate.run(lambda: started.set() or release.wait(30)))
    assert await asyncio.to_thread(started.wait, 30)
    with pytest.raises(Unavailable) as refused:  # … but the first never ends within the budget
        await gate.run(lambda: "second")
    assert refused.value.details["reason"] == "busy"
    release.set()
    await first
    assert (gate.running, gate.waiting) == (0, 0)


async def test_queued_hashes_run_one_slot_at_a_time_and_all_finish() -> None:
    gate = HashAdmission(at_once=2, budget_s=30)
    at_once: list[int] = []
    lock = threading.Lock()
    busy = [0]

    def work(i: int) -> int:
        with lock:
            busy[0] += 1
            at_once.append(busy[0])
        threading.Event().wait(0.02)
        with lock:
            busy[0] -= 1
        return i

    done = await asyncio.gather(*(gate.run(lambda i=i: work(i)) for i in range(8)))
    assert done == list(range(8))
    assert max(at_once) <= 2
