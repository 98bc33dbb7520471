"""The discovery file is a convenience: a process that cannot write it still starts and serves metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.kit.metrics import register_target


def test_a_target_file_for_prometheus(tmp_path: Path) -> None:
    folder = tmp_path / "metrics" / "targets"
    assert register_target(folder, "docs", 40123) is True
    entry = json.loads((folder / "docs.json").read_text())
    assert entry == [{"targets": ["127.0.0.1:40123"], "labels": {"process": "docs"}}]


def test_a_read_only_data_directory_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")  # compose mounts the data directory read-only; any OSError alike
    with caplog.at_level(logging.WARNING, logger="atrium.metrics"):
        assert register_target(blocked / "targets", "ai", 40124) is False
    assert "127.0.0.1:40124" in caplog.text and "not writable" in caplog.text
