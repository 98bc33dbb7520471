"""The auth service's tunables, read from the environment (all optional)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from services.kit.ratelimit import Rule, parse_rules

from .policy import PasswordPolicy

DEFAULT_RULES: dict[str, Rule] = {
    "login_ip": Rule(30, 60),  # every login attempt from one IP
    "login_client": Rule(5, 900),  # failed logins per account from one client: that client is refused
    "login_account": Rule(10, 300),  # failed logins per account from anywhere: past it, attempts wait
    "password_session": Rule(5, 900),  # wrong current passwords per account and session (password, email)
    "register_ip": Rule(10, 3600),
    "register_account": Rule(5, 3600),  # attempts per email address
    "refresh_ip": Rule(120, 60),
    "refresh_account": Rule(60, 60),  # refreshes per account, however many sessions
    "forgot_ip": Rule(10, 3600),
    "forgot_account": Rule(3, 900),
    "verify_account": Rule(3, 900),  # verification mails per account
    "verify_ip": Rule(20, 600),  # email-verification and password-reset token attempts
}


def _int(env: dict[str, str], key: str, default: int) -> int:
    return int(env.get(key, default))


@dataclass
class AuthConfig:
    access_ttl_s: int = 15 * 60
    refresh_ttl_s: int = 24 * 3600
    refresh_ttl_remember_s: int = 30 * 24 * 3600
    # A session nobody refreshed for this long ends, whatever its absolute lifetime.
    idle_timeout_s: int = 2 * 3600
    idle_timeout_remember_s: int = 7 * 24 * 3600
    # Two tabs refreshing with the same token within this window get the same successor; a rotated token
    # presented after it is reuse and ends the whole session (a thief's copy is worth at most this long).
    refresh_grace_s: int = 5
    reset_ttl_s: int = 30 * 60
    verify_ttl_s: int = 24 * 3600
    public_url: str = "http://localhost:8080"
    # Signing in needs a confirmed address: registering cannot then be used to learn (by signing in right
    # after) whether an address already had an account, nor to hold an account on someone else's address.
    signin_requires_verified_email: bool = True
    policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    rate_rules: dict[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    rate_exempt_ips: frozenset[str] = frozenset()
    mail_dir: Path = Path("var/mail")
    mail_from: str = "Atrium <atrium@localhost>"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    # Calls to identity providers and the external auth server: per-try timeout, and the clock skew
    # allowed when checking an ID token's times.
    upstream_timeout_s: float = 5.0
    sso_leeway_s: float = 60.0
    # External auth server: refresh its tokens this many seconds before they expire (`TOKEN_REFRESH_BUFFER`).
    token_refresh_buffer_s: int = 300

    @classmethod
    def from_env(cls, data_dir: Path, env: dict[str, str] | None = None) -> AuthConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            access_ttl_s=_int(env, "ATRIUM_ACCESS_TTL_S", cls.access_ttl_s),
            refresh_ttl_s=_int(env, "ATRIUM_REFRESH_TTL_S", cls.refresh_ttl_s),
            refresh_ttl_remember_s=_int(env, "ATRIUM_REFRESH_TTL_REMEMBER_S", cls.refresh_ttl_remember_s),
            idle_timeout_s=_int(env, "ATRIUM_SESSION_IDLE_S", cls.idle_timeout_s),
            idle_timeout_remember_s=_int(env, "ATRIUM_SESSION_IDLE_REMEMBER_S", cls.idle_timeout_remember_s),
            refresh_grace_s=_int(env, "ATRIUM_REFRESH_GRACE_S", cls.refresh_grace_s),
            public_url=env.get("ATRIUM_PUBLIC_URL", cls.public_url).rstrip("/"),
            signin_requires_verified_email=env.get("ATRIUM_SIGNIN_REQUIRES_VERIFIED_EMAIL", "1")
            not in ("0", "false", "no"),
            policy=PasswordPolicy.from_env(env),
            rate_rules={**DEFAULT_RULES, **parse_rules(env.get("ATRIUM_AUTH_RATE_LIMITS", ""))},
            rate_exempt_ips=frozenset(
                ip.strip() for ip in env.get("ATRIUM_AUTH_RATE_EXEMPT_IPS", "").split(",") if ip.strip()
            ),
            mail_dir=Path(env.get("ATRIUM_MAIL_DIR", str(data_dir / "mail"))),
            mail_from=env.get("ATRIUM_MAIL_FROM", cls.mail_from),
            smtp_host=env.get("ATRIUM_SMTP_HOST", ""),
            smtp_port=_int(env, "ATRIUM_SMTP_PORT", cls.smtp_port),
            smtp_user=env.get("ATRIUM_SMTP_USER", ""),
            smtp_password=env.get("ATRIUM_SMTP_PASSWORD", ""),
            smtp_starttls=env.get("ATRIUM_SMTP_STARTTLS", "1") not in ("0", "false", "no"),
            upstream_timeout_s=float(env.get("ATRIUM_UPSTREAM_TIMEOUT_S", cls.upstream_timeout_s)),
            sso_leeway_s=float(env.get("ATRIUM_SSO_LEEWAY_S", cls.sso_leeway_s)),
            token_refresh_buffer_s=_int(env, "TOKEN_REFRESH_BUFFER", cls.token_refresh_buffer_s),
        )

    @property
    def webauthn_rp_id(self) -> str:
        """The passkeys' relying party: the public URL's host name."""
        return urlsplit(self.public_url).hostname or "localhost"

    @property
    def webauthn_origin(self) -> str:
        """The origin a browser reports in a passkey ceremony: the public URL's scheme, host and port."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def refresh_ttl(self, remember_me: bool) -> int:
        return self.refresh_ttl_remember_s if remember_me else self.refresh_ttl_s

    def idle_timeout(self, remember_me: bool) -> int:
        return self.idle_timeout_remember_s if remember_me else self.idle_timeout_s
