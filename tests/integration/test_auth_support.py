"""Helpers shared by the auth tests (no tests here): the auth database, the dev outbox, signing keys."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from services.auth.keys import SigningKey, load_keys
from services.kit.db import Database
from tests.conftest import Stack

TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]+)")


@pytest_asyncio.fixture
async def auth_db(stack: Stack) -> AsyncIterator[Database]:
    """The auth service's own database, for checking that a refused request changed nothing."""
    db = Database(stack.db_urls["auth"], "auth")
    yield db
    await db.dispose()


def mails_to(stack: Stack, address: str) -> list[email.message.EmailMessage]:
    """Every mail the dev outbox holds for `address`, oldest first."""
    found = []
    for path in sorted((stack.data_dir / "mail").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        if msg["To"] == address:
            found.append(msg)
    return found  # type: ignore[return-value]


def last_link_token(stack: Stack, address: str, subject_word: str) -> str:
    msgs = [m for m in mails_to(stack, address) if subject_word.lower() in str(m["Subject"]).lower()]
    assert msgs, f"no mail about {subject_word!r} to {address}"
    body = msgs[-1].get_content()
    match = TOKEN_IN_LINK.search(body)
    assert match, body
    return match.group(1)


_KEYS: dict[Path, SigningKey] = {}


def signing_key(stack: Stack) -> SigningKey:
    """The auth service's current signing key (parsed once: a 4096-bit key is slow to load)."""
    key_dir = stack.data_dir / "keys" / "auth"
    newest = load_keys(key_dir)[-1]
    cached = _KEYS.get(key_dir)
    if cached is None or cached.kid != newest.kid:
        cached = _KEYS[key_dir] = newest
    return cached
