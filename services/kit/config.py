"""Service settings, read from the environment the devstack (or compose) gives each process."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NATS_SECRETS_FILE = "nats.json"  # under <data>/secrets: {user: password} for every NATS user of the stack


def nats_servers(url: str) -> list[str]:
    """`NATS_URL` may list several servers, comma-separated (the nodes of a cluster: infra/nats/cluster.py);
    a client tries them all to connect and fails over between them."""
    return [u.strip() for u in url.split(",") if u.strip()]


DEFAULT_CONCURRENCY = 8

# What one process of a service does (`ATRIUM_ROLE`): everything (`all`, the default), only answer requests
# (`requests`: its Rpc subjects), or only work through events (`events`: its event consumers and loops). With
# the pipeline's work in processes of their own at a lower CPU priority (`ATRIUM_NICE`), a burst of uploads
# waits for the CPU the requests leave instead of taking it from them: with every process doing both, 200
# users' reads waited up to a second behind 7 uploads a second on 2 cores, while without the uploads the same
# reads had a p95 under 90 ms (bench/RESULTS.md, load).
ROLES = ("all", "requests", "events")


def process_role(value: str | None) -> str:
    role = (value or "all").strip().lower()
    if role not in ROLES:
        raise ValueError(f"ATRIUM_ROLE must be one of {', '.join(ROLES)}, not {value!r}")
    return role


def process_niceness(value: str | None) -> int:
    """How much lower than normal the process runs (`ATRIUM_NICE`, 0–19, as `nice`)."""
    text = (value or "0").strip()
    if not text.isdigit() or int(text) > 19:
        raise ValueError(f"ATRIUM_NICE must be a whole number from 0 to 19, not {value!r}")
    return int(text)


def service_concurrency() -> int:
    """How many requests one service process handles at once (`ATRIUM_CONCURRENCY`, default 8).

    One number sizes both ends: the service takes up to that many Rpc messages at a time and its
    database pool keeps as many connections, so a handler never waits for a connection another
    request of the same service holds. Each process reads its own environment: set it per service."""
    value = int(os.environ.get("ATRIUM_CONCURRENCY") or DEFAULT_CONCURRENCY)
    if value < 1:
        raise ValueError(f"ATRIUM_CONCURRENCY must be at least 1, not {value}")
    return value


def nats_inbox_prefix(user: str) -> str:
    """Replies to a user's requests arrive under its own prefix, which only that user may subscribe to."""
    return f"_INBOX.{user}"


@dataclass(frozen=True)
class NatsLogin:
    """A NATS user and its password; empty = anonymous (an external server without auth, or URL credentials)."""

    user: str = ""
    password: str = field(default="", repr=False)

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect`."""
        if not self.password:
            return {}
        return {"user": self.user, "password": self.password, "inbox_prefix": nats_inbox_prefix(self.user)}


def nats_login(user: str, data_dir: Path, *, stack_secrets_first: bool = False) -> NatsLogin:
    """The process's NATS credentials: `ATRIUM_NATS_USER`/`ATRIUM_NATS_PASSWORD`, else `user`'s entry in
    the secrets file (`ATRIUM_NATS_SECRETS`, default `<data>/secrets/nats.json`), else anonymous.
    `stack_secrets_first`: the caller connects to the stack of `data_dir` (the CLI), so its file wins."""
    env = os.environ
    if env.get("ATRIUM_NATS_PASSWORD"):
        return NatsLogin(env.get("ATRIUM_NATS_USER") or user, env["ATRIUM_NATS_PASSWORD"])
    own = data_dir / "secrets" / NATS_SECRETS_FILE
    candidates = [own] if stack_secrets_first and own.exists() else []
    candidates.append(Path(env.get("ATRIUM_NATS_SECRETS") or own))
    for path in candidates:
        password = json.loads(path.read_text()).get(user, "") if path.exists() else ""
        if password:
            return NatsLogin(user, password)
    return NatsLogin()


@dataclass
class ServiceSettings:
    name: str
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = ""  # the service's own login role; empty for services without a database
    schema: str = ""
    data_dir: Path = Path("var")
    platform_secret: str = ""
    log_level: str = "INFO"
    rpc_timeout_s: float = 10.0
    nats_login: NatsLogin = field(default_factory=NatsLogin)
    extra: dict[str, str] = field(default_factory=dict)
    role: str = "all"  # `process_role`
    niceness: int = 0  # `process_niceness`

    @classmethod
    def from_env(cls, name: str) -> ServiceSettings:
        env = os.environ
        up = name.upper()
        data_dir = Path(env.get("ATRIUM_DATA", "var"))
        return cls(
            name=name,
            nats_url=env.get("NATS_URL", "nats://127.0.0.1:4222"),
            database_url=env.get(f"ATRIUM_DB_URL_{up}") or _url_from_provisioned_secrets(name, data_dir),
            schema=env.get(f"ATRIUM_DB_SCHEMA_{up}", name),
            data_dir=data_dir,
            platform_secret=env.get("ATRIUM_SECRET", ""),
            log_level=env.get("LOG_LEVEL", "INFO"),
            nats_login=nats_login(name, data_dir),
            role=process_role(env.get("ATRIUM_ROLE")),
            niceness=process_niceness(env.get("ATRIUM_NICE")),
        )


def _url_from_provisioned_secrets(name: str, data_dir: Path) -> str:
    """In containers `atrium migrate` writes each role's password to `<data>/secrets/db.json`;
    with `ATRIUM_DB_HOST` set, a service builds its own URL from it."""
    host = os.environ.get("ATRIUM_DB_HOST")
    path = data_dir / "secrets" / "db.json"
    if not host or not path.exists():
        return ""
    password = json.loads(path.read_text()).get(name)
    return f"postgresql://svc_{name}:{password}@{host}/atrium" if password else ""
