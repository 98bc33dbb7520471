"""Access tokens (RS256 JWT) and refresh tokens (opaque, stored only as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

import jwt

from contracts.auth import ACCESS_TOKEN_TYPE, TOKEN_AUDIENCE, TOKEN_ISSUER

from .keys import KeyRing

ACCESS_TTL_S = 15 * 60
REFRESH_TTL_S = 24 * 3600
REFRESH_TTL_REMEMBER_S = 30 * 24 * 3600


def issue_access_token(keys: KeyRing, *, user_id: uuid.UUID, role: str, session_id: uuid.UUID,
                       ttl_s: int = ACCESS_TTL_S, now: float | None = None) -> str:
    now = int(now if now is not None else time.time())
    claims = {
        "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE, "typ": ACCESS_TOKEN_TYPE,
        "sub": str(user_id), "role": role, "sid": str(session_id),
        "iat": now, "nbf": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex,
    }
    key = keys.current
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})


def new_refresh_token() -> str:
    return secrets.token_urlsafe(64)  # 64 random bytes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
