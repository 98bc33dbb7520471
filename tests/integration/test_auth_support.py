"""Helpers shared by the auth tests (no tests here): the dev outbox and the signing keys."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import httpx

from services.auth.keys import SigningKey, load_keys
from tests.conftest import Stack

TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]+)")


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


def browser_session(r: httpx.Response) -> dict[str, str]:
    """A browser sign-in's 200 (session, second step, passkey, single sign-on): the tokens are in httpOnly
    cookies and nowhere in the body (issue 13 item 12). Returns a Bearer header made of the access cookie."""
    assert r.status_code == 200, r.text
    assert not {"access_token", "refresh_token"} & set(r.json()), r.text
    access, refresh = r.cookies["atrium_access"], r.cookies["atrium_refresh"]
    assert access not in r.text and refresh not in r.text
    for cookie in r.headers.get_list("set-cookie"):
        if cookie.startswith(("atrium_access=", "atrium_refresh=")):
            assert "httponly" in cookie.lower(), cookie
    return {"Authorization": f"Bearer {access}"}
