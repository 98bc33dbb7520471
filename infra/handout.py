"""Each container of compose.yaml gets only its own credentials (`atrium migrate --hand-out DIR`).

The one-shot `migrate` container keeps every secret of the stack in its own volume (`<data>/secrets`:
all NATS passwords including `operator`, all database passwords). For each process P it writes
`DIR/P/secrets/nats.json` and `DIR/P/secrets/db.json` holding P's own password alone — the files a
process reads (services.kit.config) — and for the NATS server `DIR/nats/server.conf` with `users.conf`
(bcrypt hashes only). Each `DIR/P` is P's own volume, mounted read-only at P's ATRIUM_DATA (auth's is
writable: its signing keys live there and go nowhere else).
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.settings import NATS_USER as GATEWAY
from infra import catalog
from infra.embedded import StackError
from infra.secret_files import write_secret
from services.kit.config import NATS_SECRETS_FILE
from services.kit.storage import server_store_bytes, storage_budget

from .nats.accounts import AUTH_CONF, write_config
from .nats.server import render_server

DB_SECRETS_FILE = "db.json"  # infra.embedded.provision writes it; services.kit.config reads it
NATS_SERVER = "nats"
# compose.yaml's nats-data volume (infra/docker/Dockerfile.nats makes it writable); nats-server keeps
# JetStream in <store_dir>/jetstream.
NATS_STORE_DIR = "/data"


def processes() -> tuple[str, ...]:
    return (*(s.name for s in catalog.SERVICES), GATEWAY)


def _volume(out_dir: Path, name: str) -> Path:
    path = out_dir / name
    if not path.is_dir():
        raise StackError(
            f"{path} does not exist: mount {name}'s volume there (see compose.yaml, service migrate)"
        )
    return path


def hand_out(data_dir: Path, out_dir: Path) -> list[Path]:
    """Write every process's own credentials under `out_dir`; returns the files written."""
    secrets = data_dir / "secrets"
    nats_passwords: dict[str, str] = json.loads((secrets / NATS_SECRETS_FILE).read_text())
    db_path = secrets / DB_SECRETS_FILE
    db_passwords: dict[str, str] = json.loads(db_path.read_text()) if db_path.exists() else {}
    written = []
    for name in processes():
        own = _volume(out_dir, name) / "secrets"
        files = {NATS_SECRETS_FILE: {name: nats_passwords[name]}}
        if name in db_passwords:
            files[DB_SECRETS_FILE] = {name: db_passwords[name]}
        for filename, content in files.items():
            write_secret(own / filename, json.dumps(content))
            written.append(own / filename)
    server = _volume(out_dir, NATS_SERVER)
    users = server / AUTH_CONF
    write_secret(users, write_config(data_dir).read_text())
    conf = server / "server.conf"
    write_secret(
        conf,
        render_server(
            name="atrium",
            listen="0.0.0.0:4222",
            monitor="127.0.0.1:8222",  # the health check runs inside the container; nobody else needs it
            store_dir=NATS_STORE_DIR,
            include=AUTH_CONF,
            max_file_store=str(server_store_bytes(storage_budget())),
        ),
    )
    return [*written, users, conf]
