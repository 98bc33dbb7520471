"""A real `./atrium up` in a separate process tree, for tests where the devstack itself matters (its
supervisor, its data directory): start, stop, the CLI against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from infra.embedded import free_port
from tests.conftest import PASSWORD, newest_link_token

ROOT = Path(__file__).resolve().parents[1]


def atrium(
    *args: str,
    data: Path,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


class Up:
    def __init__(self, data: Path, port: int):
        self.data, self.port = data, port
        self.log = data.parent / f"up-{port}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 180) -> None:
        # The stack's own servers and platform secret (its data directory's), not the test harness's.
        env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "ATRIUM_SECRET")}
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.out = open(self.log, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.cli",
                "up",
                "--port",
                str(self.port),
                "--data",
                str(self.data),
                "--no-web-build",
            ],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=self.out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"atrium up exited {self.proc.returncode}:\n{self.log.read_text()}")
            if "Atrium is running at" in self.log.read_text()[offset:]:
                return
            time.sleep(0.3)
        raise AssertionError(f"atrium up did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        if not self.proc:
            return
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        _, alive = psutil.wait_procs(tree, timeout=15)
        assert not alive, f"orphans left behind: {[p.pid for p in alive]}"
        self.out.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def register(self, email: str) -> None:
        """A new account whose address is confirmed by its mailed link (signing in needs it)."""
        r = httpx.post(f"{self.url}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
        assert r.status_code == 201, r.text
        token = newest_link_token(email, "confirm", self.data / "mail")
        r = httpx.post(f"{self.url}/auth/email/verify", json={"token": token}, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path / "data", free_port())
    yield u
    if u.proc and u.proc.poll() is None:
        u.stop()
