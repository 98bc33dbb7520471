"""Sliding-window rate limits for login, register, refresh, forgot-password and token checks.

A rule allows `limit` events per `window_s` seconds for one key (a client IP, an account, or an account
seen from one client). The window slides: the oldest event leaving it frees a slot, so `Retry-After`
is exact.

Failed sign-ins are counted per account *and* client (`login_client`): a client that keeps guessing one
account's password is refused for that account, and only that client is. Across all clients they are
counted per account (`login_account`) to slow a distributed attack down: past the limit every attempt
on the account waits a little longer (`delay_s`, up to `MAX_DELAY_S`) but is never refused, so a
stranger cannot lock the owner out, whatever they try from wherever (ASVS 6.3: progressive delay).

State is in process memory: each auth replica limits on its own (N replicas allow up to N times
the limit), which keeps the hot path free of a database round trip.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from contracts import RateLimited


@dataclass(frozen=True)
class Rule:
    limit: int
    window_s: float


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

MAX_KEYS = 100_000
# Progressive delay: the first attempt past a delaying rule's limit waits BASE_DELAY_S, each further
# failure doubles it, up to MAX_DELAY_S (well inside the gateway's 10 s answer timeout).
BASE_DELAY_S = 0.5
MAX_DELAY_S = 4.0


def parse_rules(spec: str) -> dict[str, Rule]:
    """`login_ip=30/60,forgot_account=3/900` → rules (limit per window in seconds)."""
    rules: dict[str, Rule] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        limit, _, window = value.partition("/")
        rules[name.strip()] = Rule(int(limit), float(window))
    return rules


class RateLimiter:
    def __init__(
        self, rules: dict[str, Rule], exempt_ips: frozenset[str] = frozenset(), clock=time.monotonic
    ):  # type: ignore[no-untyped-def]
        self.rules = rules
        self.exempt_ips = exempt_ips
        self.clock = clock
        self.events: dict[tuple[str, str], deque[float]] = {}

    def _window(self, rule_name: str, key: str) -> tuple[Rule, deque[float]] | None:
        rule = self.rules.get(rule_name)
        if rule is None or not key or (rule_name.endswith("_ip") and key in self.exempt_ips):
            return None
        now = self.clock()
        events = self.events.get((rule_name, key))
        if events is None:
            if len(self.events) >= MAX_KEYS:
                self._prune(now)
            events = self.events[(rule_name, key)] = deque()
        while events and events[0] <= now - rule.window_s:
            events.popleft()
        return rule, events

    def check(self, rule_name: str, key: str) -> None:
        """Refuse with `RateLimited` (and the seconds until a slot frees) when the window is full."""
        found = self._window(rule_name, key)
        if found is None:
            return
        rule, events = found
        if len(events) >= rule.limit:
            retry = max(1, math.ceil(events[0] + rule.window_s - self.clock()))
            raise RateLimited(f"Too many attempts; try again in {retry} s.", {"retry_after_s": retry})

    def hit(self, rule_name: str, key: str) -> None:
        found = self._window(rule_name, key)
        if found is not None:
            found[1].append(self.clock())

    def count(self, rule_name: str, key: str) -> int:
        """Events of `key` inside the rule's window now."""
        found = self._window(rule_name, key)
        return 0 if found is None else len(found[1])

    def delay_s(self, rule_name: str, key: str) -> float:
        """How long the next attempt should wait: 0 up to the rule's limit, then doubling per event."""
        rule = self.rules.get(rule_name)
        over = self.count(rule_name, key) - (rule.limit if rule else 0)
        return 0.0 if rule is None or over < 0 else min(BASE_DELAY_S * 2**over, MAX_DELAY_S)

    def take(self, rule_name: str, key: str) -> None:
        """Check, then count this attempt."""
        self.check(rule_name, key)
        self.hit(rule_name, key)

    def _prune(self, now: float) -> None:
        longest = max((r.window_s for r in self.rules.values()), default=0)
        for k in [k for k, ev in self.events.items() if not ev or ev[-1] <= now - longest]:
            del self.events[k]
