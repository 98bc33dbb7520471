"""argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane), always off the event loop, admitted
as the cores allow.

A hash costs a core ≈ 40–80 ms, so a burst of sign-ins (a team arriving at 9:00, a load test's ramp) is
more hashing than the machine does in the callers' patience: run unbounded in threads, every hash of the
burst slowed all the others, and sign-ins ran past the gateway's timeout (504) long after their work was
lost. So at most one hash per core runs at a time and the others queue; a sign-in that would wait longer
than `HASH_WAIT_BUDGET_S` is told at once to come back (`unavailable`: HTTP 503 with `Retry-After`), before
any password is looked at — whether the account exists or the password is right, the answer is the same.
The parameters never go below OWASP's minimum.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from contracts import Unavailable

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
# Verified against when the email is unknown, so the answer takes as long as for a real account.
_DUMMY_HASH = HASHER.hash("atrium-timing-equaliser")

# Hashes at once: one per core (`ATRIUM_PASSWORD_HASHES_AT_ONCE` to change).
HASHES_AT_ONCE = int(os.environ.get("ATRIUM_PASSWORD_HASHES_AT_ONCE") or os.cpu_count() or 1)
# The longest a hash waits for its turn; well within the gateway's 10 s for the whole sign-in.
HASH_WAIT_BUDGET_S = float(os.environ.get("ATRIUM_PASSWORD_WAIT_BUDGET_S") or 4.0)

T = TypeVar("T")


class HashAdmission:
    """At most `at_once` hashes running; a caller whose expected wait exceeds `budget_s` is refused at once
    (`Unavailable` with `retry_after_s`), one that waited `budget_s` without its turn too."""

    def __init__(self, at_once: int, budget_s: float):
        self.at_once = max(1, at_once)
        self.budget_s = budget_s
        self.running = 0
        self.waiting = 0
        self.seconds_per_hash = 0.08  # learnt from the hashes done (a moving average)
        self._turns: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def expected_wait_s(self) -> float:
        """How long a hash asked for now would wait for its turn."""
        ahead = self.waiting + self.running - self.at_once + 1
        return max(0, ahead) * self.seconds_per_hash / self.at_once

    def _refuse(self) -> Unavailable:
        retry = max(1, math.ceil(self.expected_wait_s()))
        return Unavailable(
            f"Too many sign-ins at once; try again in {retry} s.", {"reason": "busy", "retry_after_s": retry}
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._turns is None or self._loop is not loop:  # one per event loop (tests run several)
            self._turns, self._loop, self.running, self.waiting = asyncio.Semaphore(self.at_once), loop, 0, 0
        return self._turns

    async def run(self, work: Callable[[], T]) -> T:
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
        try:
            started = time.perf_counter()
            result = await asyncio.to_thread(work)
            took = time.perf_counter() - started
            self.seconds_per_hash = 0.8 * self.seconds_per_hash + 0.2 * took
            return result
        finally:
            self.running -= 1
            turns.release()


ADMISSION = HashAdmission(HASHES_AT_ONCE, HASH_WAIT_BUDGET_S)


async def hash_password(password: str) -> str:
    return await ADMISSION.run(lambda: HASHER.hash(password))


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await ADMISSION.run(check)


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
