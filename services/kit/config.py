"""Service settings, read from the environment the devstack (or compose) gives each process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


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
    extra: dict[str, str] = field(default_factory=dict)

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
        )


def _url_from_provisioned_secrets(name: str, data_dir: Path) -> str:
    """In containers `atrium migrate` writes each role's password to `<data>/secrets/db.json`;
    with `ATRIUM_DB_HOST` set, a service builds its own URL from it."""
    import json

    host = os.environ.get("ATRIUM_DB_HOST")
    path = data_dir / "secrets" / "db.json"
    if not host or not path.exists():
        return ""
    password = json.loads(path.read_text()).get(name)
    return f"postgresql://svc_{name}:{password}@{host}/atrium" if password else ""
