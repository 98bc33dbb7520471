"""The web app's API types come from `web/src/api/openapi.json`, the gateway's OpenAPI, committed so that a
clone without Python still builds. It must be what the gateway serves today."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway import openapi
from tests.conftest import ROOT

COMMITTED = ROOT / "web" / "src" / "api" / "openapi.json"
REGENERATE = "python -m gateway.openapi --out web/src/api/openapi.json"


def test_committed_openapi_is_the_gateways() -> None:
    fresh = openapi.render(openapi.spec())
    assert COMMITTED.read_text(encoding="utf-8") == fresh, (
        f"web/src/api/openapi.json is stale: the gateway's routes or contracts changed. Run `{REGENERATE}` "
        "(`npm run build` in web/ does it too) and commit the result with the change."
    )


def test_dump_command_writes_only_on_change(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "openapi.json"
    cmd = [sys.executable, "-m", "gateway.openapi", "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=120)
    first = out.stat().st_mtime_ns
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    assert "/api/v1/documents" in document["paths"] and "/api/v1/auth/me" in document["paths"]
    # A second run with nothing changed leaves the file alone (the web build checks timestamps).
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=120)
    assert out.stat().st_mtime_ns == first
