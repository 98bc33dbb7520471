"""The text worker SIGKILLed in the middle of OCR: its pool child dies with it, the run is redelivered
and another worker OCRs the whole document (the same pattern as `test_extract_crash.py`)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

from contracts.documents import DocumentExtracted
from services.extraction.text.handlers import Deps
from services.kit.bus import Service
from tests.conftest import Stack
from tests.integration.ocr_helpers import SCANNED
from tests.integration.test_extraction_text import Outcomes, outcomes, upload  # noqa: F401
from tests.reliability.test_extract_crash import (  # noqa: F401  (fixture)
    children_of,
    gone,
    solo,
    start_in_process,
    start_worker_process,
)


async def test_worker_killed_mid_ocr_is_redelivered_and_completed(
    stack: Stack, outcomes: Outcomes, solo: list[Service], tmp_path: Path
) -> None:
    first = await start_worker_process(stack, tmp_path / "worker-a.log")
    try:
        event = await upload(stack, SCANNED / "scan_invoice_10p.pdf")

        def ocr_pages_done() -> list[int]:
            return [p.done for p in outcomes.ocr.get(event.document_id, []) if p.done]

        while not ocr_pages_done():  # the first page is recognised; nine are still to come
            outcomes.changed.clear()
            await asyncio.wait_for(outcomes.changed.wait(), 120)
        assert len(ocr_pages_done()) < 10
        pool_children = children_of(first.pid)
        assert pool_children
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        for child in pool_children:  # Tesseract stops with its worker instead of reading on, orphaned
            await asyncio.wait_for(gone(child), 10)
        assert not outcomes.extracted.get(event.document_id)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = await start_in_process(stack, solo)
    done = await outcomes.terminal(event.document_id, timeout=600)  # after the durable's ack_wait
    assert isinstance(done, DocumentExtracted), done
    assert done.worker == second.deps_as(Deps).worker and done.attempt == 2
    assert done.ocr_pages == 10 and not done.needs_ocr and done.text_layer_object
    attempts = [(p["attempt"], p["worker"]) for p in outcomes.processing[event.document_id]]
    assert attempts == [(1, f"{socket.gethostname()}:{first.pid}"), (2, second.deps_as(Deps).worker)]
