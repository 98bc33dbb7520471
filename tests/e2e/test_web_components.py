"""The web app's component tests (Vitest + Testing Library) run as part of the suite."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from infra.web import WEB


def test_vitest_component_tests_pass(web_dist: Path) -> None:
    npm = shutil.which("npm")
    assert npm, "npm is required"
    result = subprocess.run([npm, "test", "--silent"], cwd=WEB, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
