"""TOTP (RFC 6238: 30-second steps, 6 digits, HMAC-SHA1 — what every authenticator app speaks) and
recovery codes. Pure functions; the handlers keep the secret encrypted and the last accepted step.

A code is accepted for the current step or one step either side (clock drift), and only for a step
later than the last one accepted, so a code seen over someone's shoulder cannot be used again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
import segno

from contracts.identity import RECOVERY_CODE_COUNT, TOTP_CODE_DIGITS

ISSUER = "Atrium"
STEP_S = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def otpauth_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret, digits=TOTP_CODE_DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg_data_url(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_CODE_DIGITS, interval=STEP_S).at(step * STEP_S)


def current_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP_S)


def accepted_step(secret: str, code: str, last_step: int, at: float | None = None) -> int | None:
    """The time step `code` belongs to, when it is valid now and later than `last_step`; else None."""
    typed = "".join(code.split())
    if len(typed) != TOTP_CODE_DIGITS or not typed.isdigit():
        return None
    now = current_step(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(code_at(secret, step), typed):
            return step
    return None


# ---- recovery codes -------------------------------------------------------------------------------


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """`count` codes of 80 random bits: 16 base32 characters in groups of four."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalize_recovery_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(b"atrium-recovery\x00" + normalize_recovery_code(code).encode()).hexdigest()


def looks_like_totp(code: str) -> bool:
    typed = "".join(code.split())
    return len(typed) == TOTP_CODE_DIGITS and typed.isdigit()
