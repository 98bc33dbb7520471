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
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .admission import Admission

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
# Verified against when the email is unknown, so the answer takes as long as for a real account.
_DUMMY_HASH = HASHER.hash("atrium-timing-equaliser")

# Hashes at once: one per core (`ATRIUM_PASSWORD_HASHES_AT_ONCE` to change).
HASHES_AT_ONCE = int(os.environ.get("ATRIUM_PASSWORD_HASHES_AT_ONCE") or os.cpu_count() or 1)
# The longest a hash waits for its turn; well within the gateway's 10 s for the whole sign-in.
HASH_WAIT_BUDGET_S = float(os.environ.get("ATRIUM_PASSWORD_WAIT_BUDGET_S") or 4.0)

ADMISSION = Admission(HASHES_AT_ONCE, HASH_WAIT_BUDGET_S, "sign-ins", seconds_each=0.08)


async def hash_password(password: str) -> str:
    async with ADMISSION.turn():
        return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async with ADMISSION.turn():
        return await asyncio.to_thread(check)


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
