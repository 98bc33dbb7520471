"""Sign-in metrics (services/kit/metrics.py tells how they are served). No label names an account."""

from __future__ import annotations

from services.kit.metrics import Counter

SIGNINS = Counter(
    "atrium_auth_signins_total",
    "Sign-ins (password, second step, passkey, SSO, external server) by outcome: ok, failed (with its "
    "reason), or refused (the client was locked out).",
    ["outcome", "reason"],
)
LOCKOUTS = Counter(
    "atrium_auth_lockouts_total",
    "Sign-ins refused because that client failed too often on that account (or from that address).",
)
REFRESH_REUSE = Counter(
    "atrium_auth_refresh_reuse_total",
    "Rotated refresh tokens presented again: each ended its whole session.",
)
