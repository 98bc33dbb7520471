"""`atrium bus subjects` and `atrium bus asyncapi` describe exactly the declared bus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from contracts import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def atrium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_subjects_lists_every_declared_subject() -> None:
    r = atrium("bus", "subjects", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    listed = {row["subject"] for row in rows if row["kind"] != "progress"}
    assert listed == set(REGISTRY.rpcs) | set(REGISTRY.events)
    register = next(row for row in rows if row["subject"] == "auth.user.register")
    assert register["request"] == "RegisterUser" and register["access"] == "public"


def test_asyncapi_document(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    r = atrium("bus", "asyncapi", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert set(REGISTRY.rpcs) | set(REGISTRY.events) <= addresses
    for channel in doc["channels"].values():  # every message resolves to a schema
        for ref in channel["messages"].values():
            name = ref["$ref"].rsplit("/", 1)[1]
            assert name in doc["components"]["messages"]


def test_publish_refuses_an_invalid_event_before_connecting() -> None:
    r = atrium(
        "bus", "publish", "events.docs.uploaded", '{"document_id": "nope"}', "--nats", "nats://127.0.0.1:1"
    )
    assert r.returncode == 1 and '"invalid"' in r.stderr and "document_id" in r.stderr


def test_request_to_an_unknown_subject_is_refused() -> None:
    r = atrium("bus", "request", "nobody.thing.do", "{}", "--nats", "nats://127.0.0.1:1")
    assert r.returncode == 2 and "not a declared subject" in r.stderr
