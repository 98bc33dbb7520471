"""The password policy: a configurable object whose check lists every rule a password fails.

The default follows OWASP ASVS 5.0: at least 12 characters, at least 64 allowed, not one of the
common passwords shipped in `common_passwords.txt`, and not containing the email's local part.
The composition rules of the original design (an uppercase letter, a special character, no
forbidden words) are off by default and can be switched on with `ATRIUM_PASSWORD_COMPOSITION=1`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from contracts import Invalid

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords(path: Path = COMMON_PASSWORDS_FILE) -> frozenset[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_length: int = 128  # ASVS: at least 64 must be allowed
    refuse_common: bool = True
    refuse_email_local_part: bool = True
    require_uppercase: bool = False
    require_special: bool = False
    forbidden_words: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PasswordPolicy:
        env = dict(os.environ if env is None else env)
        composition = env.get("ATRIUM_PASSWORD_COMPOSITION", "") in ("1", "true", "yes")
        words = env.get("ATRIUM_PASSWORD_FORBIDDEN_WORDS", "test,atrium" if composition else "")
        return cls(
            min_length=int(env.get("ATRIUM_PASSWORD_MIN_LENGTH", cls.min_length)),
            max_length=max(64, int(env.get("ATRIUM_PASSWORD_MAX_LENGTH", cls.max_length))),
            require_uppercase=composition,
            require_special=composition,
            forbidden_words=tuple(w.strip().lower() for w in words.split(",") if w.strip()),
        )

    def failures(self, password: str, email: str = "") -> list[str]:
        """Every rule `password` breaks, as short phrases a person can act on."""
        failed: list[str] = []
        lowered = password.lower()
        if len(password) < self.min_length:
            failed.append(f"use at least {self.min_length} characters")
        if len(password) > self.max_length:
            failed.append(f"use at most {self.max_length} characters")
        if self.refuse_common and lowered.strip() in common_passwords():
            failed.append("choose a password that is not on the list of commonly used passwords")
        local = email.split("@", 1)[0].lower()
        if self.refuse_email_local_part and len(local) >= 3 and local in lowered:
            failed.append("do not include the name part of your email address")
        if self.require_uppercase and not any(c.isupper() for c in password):
            failed.append("include an uppercase letter")
        if self.require_special and all(c.isalnum() or c.isspace() for c in password):
            failed.append("include a special character (not a letter, digit or space)")
        for word in self.forbidden_words:
            if word in lowered:
                failed.append(f"do not use the word '{word}'")
        return failed

    def enforce(self, password: str, email: str = "", field_name: str = "password") -> None:
        failed = self.failures(password, email)
        if failed:
            raise Invalid(
                "The password does not meet the rules: " + "; ".join(failed) + ".",
                [{"field": field_name, "message": m} for m in failed],
            )
