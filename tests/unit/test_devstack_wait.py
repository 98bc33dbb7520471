"""`atrium up`'s wait for health names what is not healthy yet: the process, why, whether it runs, its log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from infra.devstack import Child, DevStack
from infra.embedded import StackError, free_port


def stack_with(tmp_path: Path) -> DevStack:
    stack = DevStack(data_dir=tmp_path, http_port=free_port())
    logs = tmp_path / "logs"
    crashed = Child("docs", [sys.executable, "-c", "raise SystemExit(3)"], {}, logs / "docs.log")
    crashed.restarts = 2
    running = Child("extract-1", [sys.executable, "-c", "import time; time.sleep(30)"], {}, logs / "x.log")
    running.proc = subprocess.Popen(running.argv)
    stack.children = [crashed, running]
    return stack


def test_not_healthy_names_each_process_why_and_its_state(tmp_path: Path) -> None:
    stack = stack_with(tmp_path)
    try:
        health = {
            "status": "degraded",
            "nats": "ok",
            "postgres": "ok",
            "services": {
                "auth": {"status": "ok"},
                "docs": {"status": "down", "error": "no responder on docs.health"},
                "extract": {"status": "degraded", "checks": {"postgres": "ok", "ocr": "no tessdata"}},
            },
        }
        lines = stack.not_healthy(health)
        assert len(lines) == 2, lines
        docs, extract = lines
        assert docs.startswith("docs: no responder on docs.health (docs not running, restarted 2×, log ")
        assert str(tmp_path / "logs" / "docs.log") in docs
        assert extract.startswith("extract: degraded {'ocr': 'no tessdata'} (extract-1 running, log ")
        # The gateway not answering at all is named as such.
        (gateway,) = stack.not_healthy(httpx.ConnectError("refused"))
        assert gateway == f"gateway: not answering on port {stack.http_port} (refused)"
    finally:
        stack.children[1].proc.kill()  # type: ignore[union-attr]
        stack.children[1].proc.wait()  # type: ignore[union-attr]


def test_the_timeout_says_what_is_not_healthy(tmp_path: Path) -> None:
    stack = DevStack(data_dir=tmp_path, http_port=free_port())  # nothing listens there
    with pytest.raises(StackError) as info:
        stack.wait_healthy(timeout=1.0)
    message = str(info.value)
    assert "did not become healthy within 1 s (ATRIUM_UP_TIMEOUT raises the limit)" in message
    assert f"gateway: not answering on port {stack.http_port}" in message
