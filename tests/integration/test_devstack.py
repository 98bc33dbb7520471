"""`./atrium up` for real: a separate process tree, its data surviving a restart, the CLI against it."""

from __future__ import annotations

import json
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
from tests.conftest import PASSWORD, newest_link_token, unique_email

ROOT = Path(__file__).resolve().parents[2]


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
        env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
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


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path / "data", free_port())
    yield u
    if u.proc and u.proc.poll() is None:
        u.stop()


def test_up_register_restart_and_cli(up: Up, tmp_path: Path) -> None:
    up.start()
    health = httpx.get(f"{up.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    email = unique_email("devstack")
    r = httpx.post(f"{up.url}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 201, r.text
    token = newest_link_token(email, "confirm", up.data / "mail")  # signing in needs a confirmed address
    assert httpx.post(f"{up.url}/auth/email/verify", json={"token": token}, timeout=30).status_code == 200

    # the CLI finds the stack through --data and speaks the contracts
    res = atrium("bus", "request", "auth.health", "--data", str(up.data), data=up.data)
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "ok", res.stderr
    res = atrium(
        "bus", "request", "auth.user.register", '{"email": "nope"}', "--data", str(up.data), data=up.data
    )
    assert res.returncode == 1 and '"invalid"' in res.stderr
    res = atrium("bus", "request", "no.such.subject", "--data", str(up.data), data=up.data)
    assert res.returncode == 2 and "not a declared subject" in res.stderr

    # a second stack on the same data dir is refused with a clear message
    second = atrium("up", "--port", str(free_port()), "--data", str(up.data), "--no-web-build", data=up.data)
    assert second.returncode == 1 and "already running" in second.stdout
    # a busy port too
    busy = atrium(
        "up", "--port", str(up.port), "--data", str(tmp_path / "other"), "--no-web-build", data=up.data
    )
    assert busy.returncode == 1 and f"Port {up.port} is already in use" in busy.stdout

    up.stop()
    up.start()
    r = httpx.post(f"{up.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, "the account did not survive a restart"


def test_a_crashed_service_is_restarted(up: Up) -> None:
    up.start()
    service = next(
        p
        for p in psutil.Process(up.proc.pid).children(recursive=True)
        if "services.auth" in " ".join(p.cmdline())
    )
    service.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "auth exited with code" in up.log.read_text():
            break
        time.sleep(0.2)
    assert "restarting" in up.log.read_text()
    while time.monotonic() < deadline:
        if httpx.get(f"{up.url}/health", timeout=10).status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError("auth did not come back after a crash")
