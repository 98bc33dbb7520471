"""A software WebAuthn authenticator for the API tests (no tests here): it makes real P-256 credentials
and signs real assertions the way a platform authenticator does (attestation "none", user present and
verified), so the auth service's `webauthn` verification runs on genuine data. The browser tests use
chromium's own virtual authenticator instead (tests/e2e/test_security_page.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    origin: str
    credentials: list[SoftCredential] = field(default_factory=list)
    user_verified: bool = True

    def _flags(self, extra: int = 0) -> int:
        return UP | (UV if self.user_verified else 0) | extra

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """`navigator.credentials.create()` for the options the server sent: the PublicKeyCredential JSON."""
        rp_id = options["rp"]["id"]
        cred = SoftCredential(
            os.urandom(32), ec.generate_private_key(ec.SECP256R1()), rp_id, unb64url(options["user"]["id"])
        )
        numbers = cred.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        attested = bytes(16) + struct.pack(">H", len(cred.credential_id)) + cred.credential_id + cose
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(AT)])
            + struct.pack(">I", 0)
            + attested
        )
        client = self._client_data("webauthn.create", options["challenge"])
        self.credentials.append(cred)
        return {
            "id": b64url(cred.credential_id),
            "rawId": b64url(cred.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client),
                "attestationObject": b64url(
                    cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
                ),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self, options: dict[str, Any], cred: SoftCredential | None = None, *, challenge: str | None = None
    ) -> dict[str, Any]:
        """`navigator.credentials.get()`: an assertion by `cred` (else the first credential allowed)."""
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials") or []]
        if cred is None:
            cred = next(c for c in self.credentials if not allowed or c.credential_id in allowed)
        cred.sign_count += 1
        auth_data = (
            hashlib.sha256(cred.rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", cred.sign_count)
        )
        client = self._client_data("webauthn.get", challenge or options["challenge"])
        signature = cred.key.sign(auth_data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(cred.credential_id),
            "rawId": b64url(cred.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(cred.user_handle),
            },
            "clientExtensionResults": {},
        }

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()
