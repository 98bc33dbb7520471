"""Signing keys: 4096-bit RSA, one PEM file per key id under `<data>/keys/auth/`.

Several keys can be live: tokens are signed with the newest and verified with any published
one, so rotation is `atrium keys generate` followed by removing the old file once its tokens expired.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.auth import Jwk, Jwks

KEY_BITS = 4096


@dataclass
class SigningKey:
    kid: str
    private_pem: bytes
    created: float

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        # Loading a 4096-bit key checks it (~100 ms): do it once, not per token.
        return serialization.load_pem_private_key(self.private_pem, password=None)  # type: ignore[return-value]

    def public_jwk(self) -> Jwk:
        nums = self.private_key.public_key().public_numbers()
        return Jwk(kty="RSA", kid=self.kid, n=_b64(nums.n), e=_b64(nums.e))


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_key(key_dir: Path, bits: int = KEY_BITS) -> SigningKey:
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    created = time.time()
    kid = time.strftime("%Y%m%d%H%M%S", time.gmtime(created)) + "-" + os.urandom(4).hex()
    path = key_dir / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return SigningKey(kid, pem, created)


def load_keys(key_dir: Path) -> list[SigningKey]:
    """All live keys, newest last."""
    if not key_dir.is_dir():
        return []
    keys = [SigningKey(p.stem, p.read_bytes(), p.stat().st_mtime) for p in key_dir.glob("*.pem")]
    return sorted(keys, key=lambda k: (k.kid, k.created))


RELOAD_CHECK_S = 5.0


class KeyRing:
    """The live keys of `key_dir`; a key added or removed there (`atrium keys generate`) is picked
    up within a few seconds without a restart."""

    def __init__(self, key_dir: Path):
        self.key_dir = key_dir
        self.keys = load_keys(key_dir)
        self._jwks: Jwks | None = None
        self._dir_mtime = self._mtime()
        self._checked_at = time.monotonic()

    def _mtime(self) -> int:
        try:
            return self.key_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def ensure(self) -> None:
        if not self.keys:
            self.keys = [generate_key(self.key_dir)]
            self._jwks = None
            self._dir_mtime = self._mtime()

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return
        self._checked_at = now
        mtime = self._mtime()
        if mtime != self._dir_mtime:
            fresh = load_keys(self.key_dir)
            if fresh:
                known = {k.kid: k for k in self.keys}  # keep parsed keys: parsing a 4096-bit key is slow
                self.keys = [known.get(k.kid, k) for k in fresh]
                self._jwks = None
            self._dir_mtime = mtime

    @property
    def current(self) -> SigningKey:
        self._maybe_reload()
        return self.keys[-1]

    def jwks(self) -> Jwks:
        self._maybe_reload()
        if self._jwks is None:
            self._jwks = Jwks(keys=[k.public_jwk() for k in self.keys])
        return self._jwks
