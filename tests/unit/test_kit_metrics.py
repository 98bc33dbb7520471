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

    def total(sample: str, **labels: str) -> float:
        """Summed over the `process` label: the first service this process started named it."""
        return sum(
            s.value
            for family in REGISTRY.collect()
            for s in family.samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )

    collections = total("atrium_gc_pause_seconds_count", generation="2")
    gc.collect()
    assert total("atrium_gc_pause_seconds_count", generation="2") == collections + 1
    assert gc.get_freeze_count() > 0

    def late() -> float:  # wake-ups more than 0.1 s late
        wakeups = total("atrium_event_loop_lag_seconds_count")
        return wakeups - total("atrium_event_loop_lag_seconds_bucket", le="0.1")

    before = late()
    time.sleep(0.4)  # holds the loop well past the timer's due time
    await asyncio.sleep(LOOP_LAG_EVERY_S * 2)
    assert late() >= before + 1


def test_how_long_a_request_queued_is_measured_from_the_callers_send_time() -> None:
    """The caller stamps `x-sent-at`; the server observes the wait when a slot takes the request, and ignores a
    request without the stamp or with a malformed one (a caller's header is not the server's failure)."""
    from services.kit.rpc import _observe_queued

    def observed() -> tuple[float, float]:
        labels = {"service": "probe", "subject": "probe.queued"}
        count = REGISTRY.get_sample_value("atrium_rpc_queue_seconds_count", labels) or 0.0
        return count, REGISTRY.get_sample_value("atrium_rpc_queue_seconds_sum", labels) or 0.0

    class Sent:
        def __init__(self, headers: dict[str, str] | None) -> None:
            self.headers = headers

    count, total = observed()
    _observe_queued("probe", "probe.queued", Sent({"x-sent-at": f"{time.time() - 0.5:.4f}"}))  # type: ignore[arg-type]
    after, waited = observed()
    assert after == count + 1 and 0.49 <= waited - total < 5
    for headers in (None, {}, {"x-sent-at": "yesterday"}):
        _observe_queued("probe", "probe.queued", Sent(headers))  # type: ignore[arg-type]
    assert observed()[0] == after
