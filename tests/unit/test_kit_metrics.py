"""The discovery file is a convenience: a process that cannot write it still starts and serves metrics."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.kit.metrics import LOOP_LAG_EVERY_S, register_target, watch_runtime


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


async def test_the_collectors_pauses_and_the_loops_lag_are_measured() -> None:
    """After start-up the heap is settled (frozen out of the collector's sight) and every pause of the process
    is timed: a full collection's, and how late the event loop wakes a timer when something holds it."""
    watch_runtime("probe")
    watch_runtime("probe")  # a second service of the same process (the test harness) adds nothing

    def count(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(f"{name}_count", {"process": "probe", **labels}) or 0.0

    collections = count("atrium_gc_pause_seconds", {"generation": "2"})
    gc.collect()
    assert count("atrium_gc_pause_seconds", {"generation": "2"}) == collections + 1
    assert gc.get_freeze_count() > 0

    def late(over: str = "0.1") -> float:  # wake-ups later than `over` seconds
        within = REGISTRY.get_sample_value(
            "atrium_event_loop_lag_seconds_bucket", {"process": "probe", "le": over}
        )
        return count("atrium_event_loop_lag_seconds", {}) - (within or 0.0)

    before = late()
    time.sleep(0.4)  # holds the loop well past the timer's due time
    await asyncio.sleep(LOOP_LAG_EVERY_S * 2)
    assert late() >= before + 1
