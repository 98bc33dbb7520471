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
from typing import Any

import httpx
import psutil
import pytest

from infra.embedded import free_port
from tests.conftest import PASSWORD, newest_link_token

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"ready", "failed", "needs_ocr"}
DEADLINE_S = 240


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
    def __init__(self, data: Path, port: int, env: dict[str, str] | None = None):
        self.data, self.port, self.env = data, port, env or {}
        self.log = data.parent / f"up-{port}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(
        self, timeout: float = 180, extra: tuple[str, ...] = (), env_extra: dict[str, str] | None = None
    ) -> None:
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
                *extra,
            ],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT), **self.env, **(env_extra or {})},
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


def login(url: str, email: str) -> dict[str, str]:
    r = httpx.post(f"{url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(url: str, headers: dict[str, str], path: Path, name: str | None = None) -> dict[str, Any]:
    files = {"file": (name or path.name, path.read_bytes(), "application/pdf")}
    r = httpx.post(f"{url}/documents", headers=headers, files=files, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["documents"][0]["document"]  # type: ignore[no-any-return]


def document(url: str, headers: dict[str, str], doc_id: str) -> httpx.Response:
    return httpx.get(f"{url}/documents/{doc_id}", headers=headers, timeout=30)


def wait_terminal(url: str, headers: dict[str, str], doc_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = document(url, headers, doc_id)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in TERMINAL:
            return body
        time.sleep(0.5)
    raise AssertionError(f"document {doc_id} is stuck: {body.get('status')}")


def all_documents(url: str, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{url}/documents", headers=headers, params={"limit": 200}, timeout=30)
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["items"]}


def download(url: str, headers: dict[str, str], path: str) -> bytes:
    r = httpx.get(f"{url}{path}", headers=headers, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.content
