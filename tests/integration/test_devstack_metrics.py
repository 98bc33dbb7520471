"""`./atrium up` and metrics: every process registers itself and Prometheus scrapes them all; without
Prometheus, `up` says how to install it and the processes still serve their metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from infra import catalog
from tests.devstack import Up, up  # noqa: F401  (up: the fixture)

PROCESSES = {name for s in catalog.SERVICES for name in s.process_names} | {"gateway"}


def targets(data: Path) -> dict[str, str]:
    folder = data / "metrics" / "targets"
    return (
        {f.stem: json.loads(f.read_text())[0]["targets"][0] for f in folder.glob("*.json")}
        if folder.exists()
        else {}
    )


def wait(what: str, check, timeout: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}; last: {last}")


def test_up_runs_prometheus_over_every_process(up: Up) -> None:
    up.start()
    banner = up.log.read_text()
    assert "Prometheus: http://127.0.0.1:" in banner, banner
    prom_url = banner.split("Prometheus: ")[-1].split()[0]
    wait(
        "every process registered its metrics",
        lambda: set(targets(up.data)) >= PROCESSES and targets(up.data),
    )

    def scraped() -> dict[str, str] | None:
        r = httpx.get(f"{prom_url}/api/v1/query", params={"query": 'up{job="atrium"}'}, timeout=10).json()
        ups = {s["metric"]["process"]: s["value"][1] for s in r["data"]["result"]}
        return ups if set(ups) >= PROCESSES and set(ups.values()) == {"1"} else None

    wait("Prometheus scrapes every process", scraped)
    # The gateway counted the health checks `up` waited on, by route template.
    text = httpx.get(f"http://{targets(up.data)['gateway']}/metrics", timeout=10).text
    assert (
        'atrium_http_requests_total{method="GET",route="/api/v1/health",service="gateway",status="200"}'
        in text
    )


def test_up_without_prometheus_says_how_to_install_it(up: Up, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATRIUM_PROMETHEUS", "off")
    up.start()
    log = up.log.read_text()
    assert "prometheus not found" in log and "apt-get install prometheus" in log, log
    found = wait("every process still serves its metrics", lambda: set(targets(up.data)) >= PROCESSES)
    assert found
    for name, where in targets(up.data).items():
        body = httpx.get(f"http://{where}/metrics", timeout=10).text
        assert "atrium_" in body, name
