"""Prometheus for a stack: Debian's `prometheus` binary, scraping every process that registered itself
in `<data>/metrics/targets/` (services/kit/metrics.py), with the alert rules of `alerts.yml`.

`atrium up` starts one next to the stack when the binary is there; without it the processes still serve
their metrics and `atrium up` says how to install it. The test harness starts one the same way
(tests/integration/test_metrics_prometheus.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.embedded import StackError, _stop, die_with_parent, free_port, port_is_free, wait_for_port
from services.kit.metrics import TARGETS_DIR

HERE = Path(__file__).resolve().parent
RULES = HERE / "alerts.yml"
DASHBOARD = HERE.parent / "grafana" / "atrium.json"
JOB = "atrium"
INSTALL_HINT = "sudo apt-get install prometheus"  # Debian/Ubuntu; elsewhere: prometheus.io/download


def binary() -> str | None:
    """`ATRIUM_PROMETHEUS` (a path to the binary; `off`: none) or the `prometheus` on PATH."""
    chosen = os.environ.get("ATRIUM_PROMETHEUS", "")
    if chosen:
        return chosen if chosen != "off" and Path(chosen).is_file() else None
    return shutil.which("prometheus")


def config(data_dir: Path, *, scrape_interval_s: float = 5.0) -> str:
    """The configuration (YAML is a superset of JSON): one job over the processes' target files."""
    interval = f"{scrape_interval_s:g}s"
    return json.dumps(
        {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "file_sd_configs": [
                        {
                            "files": [str((data_dir / TARGETS_DIR).resolve() / "*.json")],
                            "refresh_interval": "1s",
                        }
                    ],
                }
            ],
        },
        indent=2,
    )


@dataclass
class EmbeddedPrometheus:
    data_dir: Path
    port: int = 0
    scrape_interval_s: float = 5.0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "prometheus" / "prometheus.log"

    def start(self, timeout: float = 30.0) -> EmbeddedPrometheus:
        exe = binary()
        if not exe:
            raise StackError(f"prometheus is not installed; install it with: {INSTALL_HINT}")
        home = self.data_dir / "prometheus"
        home.mkdir(parents=True, exist_ok=True)
        (self.data_dir / TARGETS_DIR).mkdir(parents=True, exist_ok=True)
        conf = home / "prometheus.yml"
        conf.write_text(config(self.data_dir, scrape_interval_s=self.scrape_interval_s))
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={conf}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=15d",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        wait_for_port(self.port, self.proc, self.log_path, timeout, "prometheus")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (`[{"metric": {...}, "value": [t, "v"]}]`)."""
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"{self.url}/api/v1/query", params={"query": promql})
        body = r.json()
        if body.get("status") != "success":
            raise StackError(f"Prometheus refused {promql!r}: {body.get('error')}")
        return body["data"]["result"]  # type: ignore[no-any-return]

    async def wait_for(self, promql: str, ok: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Query until `ok(result)` holds; the last result in the error otherwise."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = await self.query(promql)
            if ok(result):
                return result
            await asyncio.sleep(0.5)
        raise AssertionError(f"{promql!r} did not reach the expected value in {timeout:g} s; last: {result}")


def clear_targets(data_dir: Path) -> None:
    """Forget the processes of a previous run (a stale target would read as a process down)."""
    folder = data_dir / TARGETS_DIR
    if folder.exists():
        for f in folder.glob("*.json"):
            f.unlink()
