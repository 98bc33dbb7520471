"""Short secrets encrypted at rest with the platform secret (`ATRIUM_SECRET`): AES-256-GCM under a key
derived by HKDF-SHA256 for one purpose, so a ciphertext of one purpose never opens as another's.

    box = SecretBox(settings.platform_secret, purpose=b"auth totp secret")
    stored = box.encrypt(clear)        # "v1:<base64url(nonce + ciphertext)>"
    clear = box.decrypt(stored)        # "" when it cannot be opened (another secret, tampering)
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from contracts import Invalid

CIPHER_VERSION = "v1"


class SecretBox:
    """Encrypts short secrets for one `purpose` (HKDF info; also the associated data unless `aad` is given)."""

    def __init__(
        self,
        platform_secret: str,
        *,
        purpose: bytes,
        aad: bytes | None = None,
        salt: bytes = b"atrium-settings-v1",
        missing_hint: str = "set it and restart the service",
    ):
        self._aad = aad if aad is not None else b"atrium/" + purpose
        self._missing_hint = missing_hint
        self._aead: AESGCM | None = None
        if platform_secret:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose).derive(
                platform_secret.encode()
            )
            self._aead = AESGCM(key)

    @property
    def ready(self) -> bool:
        return self._aead is not None

    def _require(self) -> AESGCM:
        if self._aead is None:
            raise Invalid(
                "The platform secret (ATRIUM_SECRET) is not set, so this secret cannot be stored "
                f"encrypted; {self._missing_hint}."
            )
        return self._aead

    def encrypt(self, plaintext: str, aad: bytes | None = None) -> str:
        """Sealed under this box's associated data, or `aad` for a second secret of the same purpose."""
        nonce = os.urandom(12)
        sealed = self._require().encrypt(nonce, plaintext.encode(), self._aad if aad is None else aad)
        return f"{CIPHER_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str, aad: bytes | None = None) -> str:
        """The clear secret, or "" when it cannot be opened (another platform secret, tampering)."""
        version, _, body = ciphertext.partition(":")
        if version != CIPHER_VERSION or self._aead is None:
            return ""
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return self._aead.decrypt(raw[:12], raw[12:], self._aad if aad is None else aad).decode()
        except (InvalidTag, ValueError):
            return ""
