"""A stack for benchmarks: embedded NATS and PostgreSQL, some catalog services and the gateway, each
its own process as `atrium up` runs them, in a throw-away data directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import nats

from bench.results import ROOT
from infra import catalog
from infra.embedded import EmbeddedNats, EmbeddedPostgres, free_port, provision
from infra.nats.accounts import OPERATOR
from services.kit import migrations
from services.kit.config import nats_login

PASSWORD = "a sturdy benchmark passphrase 1"


class BenchStack:
    def __init__(
        self,
        data: Path,
        services: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        code: Path = ROOT,
    ):
        """`code`: the checkout whose services and gateway run (another one compares versions)."""
        self.data = data
        self.services = tuple(services)
        self.extra_env = env or {}
        self.code = code
        self.db_urls: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}
        self.nats = EmbeddedNats(data)
        self.pg = EmbeddedPostgres(data)
        self.port = free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def start(self, timeout_s: float = 90) -> None:
        self.nats.start()
        self.pg.start()
        urls = self.db_urls = await provision(self.pg.admin_url, self.data)
        with_db = [n for n in self.services if catalog.spec(n).has_db]
        for name in with_db:
            await migrations.upgrade(name, urls[name], name)
        logs = self.spawn({n: urls[n] for n in with_db})
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:  # only some services run here, so the overall health may stay "degraded"
                    services = (await client.get(f"{self.base_url}/health")).json().get("services", {})
                    if all(services.get(n, {}).get("status") == "ok" for n in self.services):
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.3)
        raise RuntimeError(f"the stack did not come up; see {logs}")

    def spawn(self, db_urls: dict[str, str]) -> Path:
        """The services and the gateway, each its own process; returns the log directory."""
        env = {
            **os.environ,
            "PYTHONPATH": str(self.code),
            "NATS_URL": self.nats.url,
            "ATRIUM_DATA": str(self.data),
            "LOG_LEVEL": "WARNING",
            "ATRIUM_WEB_DIST": str(self.data / "none"),
            "ATRIUM_SECRET": "bench-platform-secret-0123456789",
            "ATRIUM_AUTH_RATE_EXEMPT_IPS": "127.0.0.1",
            # Bench users sign in right after registering; no mailbox to open the confirmation link from.
            "ATRIUM_SIGNIN_REQUIRES_VERIFIED_EMAIL": "0",
            **{f"ATRIUM_DB_URL_{n.upper()}": url for n, url in db_urls.items()},
            **self.extra_env,
        }
        self.env = env
        logs = self.data / "logs"
        logs.mkdir(exist_ok=True)
        cmds = {n: [sys.executable, "-m", catalog.spec(n).module] for n in self.services}
        cmds["gateway"] = [sys.executable, "-m", "gateway", "--port", str(self.port)]
        for name, cmd in cmds.items():
            with open(logs / f"{name}.log", "ab") as out:
                self.procs[name] = subprocess.Popen(
                    cmd, cwd=self.code, env=env, stdout=out, stderr=subprocess.STDOUT
                )
        return logs

    def add_process(self, name: str, label: str) -> subprocess.Popen[bytes]:
        """One more process of service `name` (e.g. a second text worker), as `label` in `procs` and the logs."""
        with open(self.data / "logs" / f"{label}.log", "ab") as out:
            proc = self.procs[label] = subprocess.Popen(
                [sys.executable, "-m", catalog.spec(name).module],
                cwd=self.code,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return proc

    async def connect(self) -> nats.NATS:
        """A NATS connection as the operator user (full rights), like the CLI's."""
        return await nats.connect(self.nats.url, **nats_login(OPERATOR, self.data).connect_options())

    async def user_token(self, client: httpx.AsyncClient) -> str:
        """Register a fresh user and sign in; returns the access token."""
        email = f"bench-{os.urandom(4).hex()}@example.com"
        r = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        r = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return str(r.json()["access_token"])

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.pg.stop()
        self.nats.stop()
