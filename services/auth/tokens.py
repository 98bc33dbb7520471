"""Access tokens (RS256 JWT), refresh tokens (opaque, stored only as SHA-256) and single-use action tokens."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid

import jwt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.auth import ACCESS_TOKEN_TYPE, TOKEN_AUDIENCE, TOKEN_ISSUER
from contracts.identity import PAT_PREFIX

from .keys import KeyRing

ACCESS_TTL_S = 15 * 60


def issue_access_token(
    keys: KeyRing,
    *,
    user_id: uuid.UUID,
    role: str,
    session_id: uuid.UUID,
    ttl_s: int = ACCESS_TTL_S,
    now: float | None = None,
    scopes: list[str] | None = None,
    apps: list[str] | None = None,
    second_factor: bool | None = None,
) -> str:
    """An access token; `scopes` (and `apps`) make it a personal access token's, limited to them.
    `second_factor` (claim `mfa`): whether the account had one set up, for the security policy's check."""
    now = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "typ": ACCESS_TOKEN_TYPE,
        "sub": str(user_id),
        "role": role,
        "sid": str(session_id),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if scopes is not None:
        claims["scp"] = scopes
    if apps is not None:
        claims["apps"] = apps
    if second_factor is not None:
        claims["mfa"] = second_factor
    key = keys.current
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})


def new_refresh_token() -> str:
    return secrets.token_urlsafe(64)  # 64 random bytes


def new_personal_token() -> str:
    return PAT_PREFIX + secrets.token_urlsafe(32)  # 256 random bits


def new_action_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _successor_key(previous_token: str) -> bytes:
    return hashlib.sha256(b"atrium-refresh-successor\x00" + previous_token.encode()).digest()


def seal_successor(previous_token: str, successor: str) -> bytes:
    """Encrypt the new refresh token under a key only the holder of the previous one can derive."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_successor_key(previous_token)).encrypt(nonce, successor.encode(), None)


def open_successor(previous_token: str, sealed: bytes) -> str:
    return AESGCM(_successor_key(previous_token)).decrypt(sealed[:12], sealed[12:], None).decode()
