"""Costly work is admitted (services/kit/admission.py: password hashes, the gateway's sign-ins): `at_once`
at a time, the others queued; a caller who would wait past the budget is refused at once with `unavailable`
and when to come back, and one whose turn does not come within the budget too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from contracts import Unavailable
from services.kit.admission import Admission

T = TypeVar("T")


async def run(gate: Admission, work: Callable[[], T]) -> T:
    async with gate.turn():
        return await asyncio.to_thread(work)


async def test_a_hash_that_would_wait_too_long_is_refused_with_when_to_retry() -> None:
    gate = Admission(at_once=1, budget_s=0.5, what="sign-ins")
    gate.seconds_each = 3.0  # as if each hash took 3 s: the second would wait 3 s
    started, release = threading.Event(), threading.Event()
    first = asyncio.create_task(run(gate, lambda: started.set() or (release.wait(30) and "first")))
    assert await asyncio.to_thread(started.wait, 30)  # the first hash is running
    with pytest.raises(Unavailable) as refused:
        await run(gate, lambda: "second")
    assert refused.value.details == {"reason": "busy", "retry_after_s": 3}
    release.set()
    assert await first == "first"
    assert await run(gate, lambda: "after") == "after"  # the slot is free again
    assert (gate.running, gate.waiting) == (0, 0)


async def test_a_hash_whose_turn_does_not_come_within_the_budget_is_refused() -> None:
    gate = Admission(at_once=1, budget_s=0.2, what="sign-ins")
    gate.seconds_each = 0.01  # expected to be quick, so the second queues …
    started, release = threading.Event(), threading.Event()
    first = asyncio.create_task(run(gate, lambda: started.set() or release.wait(30)))
    assert await asyncio.to_thread(started.wait, 30)
    with pytest.raises(Unavailable) as refused:  # … but the first never ends within the budget
        await run(gate, lambda: "second")
    assert refused.value.details["reason"] == "busy"
    release.set()
    await first
    assert (gate.running, gate.waiting) == (0, 0)


async def test_queued_hashes_run_one_slot_at_a_time_and_all_finish() -> None:
    gate = Admission(at_once=2, budget_s=30, what="sign-ins")
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

    done = await asyncio.gather(*(run(gate, lambda i=i: work(i)) for i in range(8)))
    assert done == list(range(8))
    assert max(at_once) <= 2
