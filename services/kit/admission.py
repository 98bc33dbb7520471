"""Admission for costly work: at most `at_once` run at a time, the others queue; a caller who would wait
longer than the budget is told at once to come back (`Unavailable` with `retry_after_s`: HTTP 503 with
`Retry-After`), one whose turn does not come within the budget too — never left to run past its caller's
timeout. Used for password hashing (services/kit/passwords.py) and, in the gateway, for sign-ins
(gateway/bus.py), where the queue is visible before any service's slots fill."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contracts import Unavailable


class Admission:
    def __init__(self, at_once: int, budget_s: float, what: str, seconds_each: float = 0.1):
        self.at_once = max(1, at_once)
        self.budget_s = budget_s
        self.what = what  # "sign-ins": named in the refusal
        self.running = 0
        self.waiting = 0
        self.seconds_each = seconds_each  # learnt from the work done (a moving average of wall time)
        self._turns: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def expected_wait_s(self) -> float:
        """How long work asked for now would wait for its turn."""
        ahead = self.waiting + self.running - self.at_once + 1
        return max(0, ahead) * self.seconds_each / self.at_once

    def _refuse(self) -> Unavailable:
        retry = max(1, math.ceil(self.expected_wait_s()))
        return Unavailable(
            f"Too many {self.what} at once; try again in {retry} s.",
            {"reason": "busy", "retry_after_s": retry},
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._turns is None or self._loop is not loop:  # one per event loop (tests run several)
            self._turns, self._loop, self.running, self.waiting = asyncio.Semaphore(self.at_once), loop, 0, 0
        return self._turns

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        turns = self._semaphore()
        if self.expected_wait_s() > self.budget_s:
            raise self._refuse()
        self.waiting += 1
        try:
            await asyncio.wait_for(turns.acquire(), self.budget_s)
        except TimeoutError:
            raise self._refuse() from None
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.perf_counter()
        try:
            yield
            self.seconds_each = 0.8 * self.seconds_each + 0.2 * (time.perf_counter() - started)
        finally:
            self.running -= 1
            turns.release()
