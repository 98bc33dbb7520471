"""Short-lived grants a service signs with the platform secret and verifies later (or another service does):
a share link's ticket after its password was given, a preview request for a link's visitor (who has no token).

    grant = sign_grant(secret, "share-link", str(link_id), ttl_s=1800)
    verify_grant(secret, "share-link", str(link_id), grant)   # True until it expires

A grant is `<expiry>.<HMAC-SHA256>` over purpose, subject and expiry, with a key derived from the secret per
purpose: it cannot be used for another purpose or subject, and says nothing but its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def _mac(secret: str, purpose: str, subject: str, expires: int) -> str:
    key = hmac.new(secret.encode(), f"atrium-grant:{purpose}".encode(), hashlib.sha256).digest()
    mac = hmac.new(key, f"{subject}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign_grant(secret: str, purpose: str, subject: str, *, ttl_s: float, now: float | None = None) -> str:
    if not secret:
        raise ValueError("signing a grant needs the platform secret (ATRIUM_SECRET)")
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_mac(secret, purpose, subject, expires)}"


def verify_grant(secret: str, purpose: str, subject: str, grant: str, *, now: float | None = None) -> bool:
    if not secret or not grant:
        return False
    head, _, mac = grant.partition(".")
    try:
        expires = int(head)
    except ValueError:
        return False
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac, _mac(secret, purpose, subject, expires))
