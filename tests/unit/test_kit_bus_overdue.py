"""A handler that holds its message past the ack wait with no heartbeat is said (logged and counted), once per
ack wait; one that heartbeats, or ends in time, is not (services/kit/bus.py `_OverdueWatch`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.kit import metrics
from services.kit.bus import _OverdueWatch

SUBJECT = "events.test.overdue"


def _overdue(service: str) -> float:
    return metrics.EVENTS_OVERDUE.labels(service, SUBJECT)._value.get()


async def _run(service: str, seconds: float, beat_every_s: float | None, ack_wait_s: float = 1.0) -> float:
    """How long the watched "handler" ran."""
    beats: list[float] = []
    began = asyncio.get_running_loop().time()

    async def in_progress() -> None:
        beats.append(asyncio.get_running_loop().time())

    watch = _OverdueWatch(service, SUBJECT, "test-durable", 1, ack_wait_s, in_progress)
    with watch:
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            await asyncio.sleep(beat_every_s or seconds)
            if beat_every_s:
                await watch.heartbeat()
    if beat_every_s:
        assert beats, "the heartbeat reaches JetStream's in-progress"
    return asyncio.get_running_loop().time() - began


async def test_a_silent_handler_past_its_ack_wait_is_logged_and_counted_each_ack_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="atrium.bus")
    ran_s = await _run("overdue-silent", seconds=2.5, beat_every_s=None)
    # At 1 s and at 2 s (and once more per whole second a busy machine made it run longer).
    assert 2 <= _overdue("overdue-silent") <= int(ran_s)
    said = [r for r in caplog.records if "past its ack wait" in r.getMessage()]
    assert len(said) == _overdue("overdue-silent")


async def test_a_handler_that_heartbeats_or_ends_in_time_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="atrium.bus")
    await _run("overdue-beating", seconds=2.5, beat_every_s=0.1)
    await _run("overdue-quick", seconds=0.05, beat_every_s=None)
    await asyncio.sleep(1.2)  # a timer left behind would fire by now
    assert _overdue("overdue-beating") == 0 and _overdue("overdue-quick") == 0
    assert not [r for r in caplog.records if "past its ack wait" in r.getMessage()]
