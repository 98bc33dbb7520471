"""The code base stays lint-clean (ruff) and type-checks everywhere that ships (mypy over services, gateway, infra, contracts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff() -> None:
    r = run(
        "ruff",
        "check",
        "contracts",
        "services",
        "gateway",
        "infra",
        "tests",
        "bench",
        "--output-format",
        "concise",
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_on_services_gateway_infra_and_contracts() -> None:
    r = run(
        "mypy",
        "contracts",
        "services",
        "gateway",
        "infra",
        "--ignore-missing-imports",
        "--no-error-summary",
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format() -> None:
    """`ruff format` was applied once to the whole tree; new code keeps that shape (`just fmt`)."""
    r = run("ruff", "format", "--check", "contracts", "services", "gateway", "infra", "tests", "bench")
    assert r.returncode == 0, r.stdout + r.stderr
