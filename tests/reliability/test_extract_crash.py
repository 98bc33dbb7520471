"""The text worker as a real process (`python -m services.extraction.text`): SIGKILLed mid-document
the run is redelivered and finished by another worker; a document that always times out is retried
with a delay and then failed for good. The harness's own `extract` service is paused meanwhile, so
the worker under test is the only consumer of the durable."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from contracts import Empty
from contracts.documents import EXTRACT_HEALTH, DocumentExtracted, DocumentFailed
from services.extraction.text.handlers import Deps
from services.kit.bus import Service
from services.kit.client import call
from tests.conftest import Stack
from tests.integration.test_extraction_text import PLUMBER, SYNTHETIC, Outcomes, outcomes, upload  # noqa: F401


@pytest_asyncio.fixture
async def solo(stack: Stack) -> AsyncIterator[list[Service]]:
    """Pause the harness's extract worker; services the test starts go into the yielded list."""
    paused = stack.services.pop("extract", None)
    if paused:
        await paused.stop()
    started: list[Service] = []
    yield started
    for svc in started:
        await svc.stop()
    if paused:
        stack.services["extract"] = await stack.start_service("extract")


async def start_worker_process(stack: Stack, log: Path, **env: str) -> subprocess.Popen[bytes]:
    proc = stack.start_process(
        "services.extraction.text", log, **{f"ATRIUM_EXTRACT_{k.upper()}": v for k, v in env.items()}
    )
    while True:  # up once it answers its health Rpc (its subscribers are then in place)
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            await call(stack.nc, EXTRACT_HEALTH, Empty(), timeout=1)
            return proc
        except Exception:
            await asyncio.sleep(0.2)


def children_of(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


async def gone(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{pid}/stat") as f:  # a zombie awaiting its reaper counts as gone
            if f.read().split(")")[-1].split()[0] == "Z":
                return
        await asyncio.sleep(0.05)


async def test_worker_killed_mid_document_is_redelivered_and_completed(
    stack: Stack, outcomes: Outcomes, solo: list[Service], tmp_path: Path
) -> None:
    first = await start_worker_process(stack, tmp_path / "worker-a.log")
    try:
        event = await upload(stack, SYNTHETIC / "invoice_100p.pdf")
        while not outcomes.progress.get(event.document_id):  # it is working on the document
            outcomes.changed.clear()
            await asyncio.wait_for(outcomes.changed.wait(), 60)
        assert outcomes.processing[event.document_id][0]["worker"] == f"{socket.gethostname()}:{first.pid}"
        extraction_children = children_of(first.pid)
        assert extraction_children
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        for child in extraction_children:  # the pool child dies with its worker, not parse on orphaned
            await asyncio.wait_for(gone(child), 10)
        assert not outcomes.extracted.get(event.document_id)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = await start_in_process(stack, solo)
    done = await outcomes.terminal(event.document_id, timeout=120)  # after the durable's ack_wait
    assert isinstance(done, DocumentExtracted), done
    assert done.worker == second.deps_as(Deps).worker and done.attempt == 2 and done.page_count == 100
    attempts = [(p["attempt"], p["worker"]) for p in outcomes.processing[event.document_id]]
    assert attempts == [(1, f"{socket.gethostname()}:{first.pid}"), (2, second.deps_as(Deps).worker)]


async def start_in_process(stack: Stack, started: list[Service]) -> Service:
    svc = await stack.start_service("extract")
    started.append(svc)
    return svc


async def test_timeouts_are_retried_with_delay_then_failed_for_good(
    stack: Stack, outcomes: Outcomes, solo: list[Service], tmp_path: Path
) -> None:
    worker = await start_worker_process(stack, tmp_path / "worker.log", doc_timeout_s="1", max_deliver="2")
    try:
        event = await upload(stack, PLUMBER / "chelsea_pdta.pdf")  # ~9 s of tables: always over 1 s
        done = await outcomes.terminal(event.document_id, timeout=120)
        assert isinstance(done, DocumentFailed) and done.final
        assert done.reason == "timeout" and "gave up after 2 attempts" in done.message
        failures = [(f.attempt, f.final, f.reason) for f in outcomes.failed[event.document_id]]
        assert failures == [(1, False, "timeout"), (2, False, "timeout"), (2, True, "timeout")]
        # Still alive and working after killing two children.
        ok = await upload(stack, SYNTHETIC / "letter_1p.pdf")
        assert isinstance(await outcomes.terminal(ok.document_id), DocumentExtracted)
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
