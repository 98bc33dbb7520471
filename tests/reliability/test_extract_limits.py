"""Hostile and slow PDFs against the extraction pool (real child processes) and the worker (real NATS):
a child dies or is killed, the worker carries on, and every document ends in a terminal state."""

from __future__ import annotations

import asyncio
import os
import zlib
from pathlib import Path

import pytest

from contracts.documents import DocumentExtracted, DocumentFailed
from services.extraction.text.engine import ExtractError, Limits
from services.extraction.text.pool import ExtractPool, PoolLimits, PoolStopping
from tests.conftest import Stack
from tests.integration.test_extraction_text import (  # noqa: F401  (fixtures)
    PLUMBER,
    SYNTHETIC,
    Outcomes,
    extract_worker,
    outcomes,
    upload,
)


def inflate_bomb(gib: int = 3) -> bytes:
    """A 3 MB one-page PDF whose content stream inflates to `gib` GiB of zeros.

    Built from one deflate block of 16 MiB of zeros repeated (each block ends on a full flush, so
    the copies are byte-identical); the trailing checksum is wrong, which no parser gets to see.
    """
    block = 1 << 24
    co = zlib.compressobj(9)
    first = co.compress(b"\0" * block) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(b"\0" * block) + co.flush(zlib.Z_FULL_FLUSH)
    stream = first + again * ((gib << 30) // block - 1) + co.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def bomb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "inflate-bomb.pdf"
    path.write_bytes(inflate_bomb())
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_inflate_bomb_kills_only_the_child(bomb_path: Path) -> None:
    pool = ExtractPool(1, PoolLimits(memory_mb=1024))
    await pool.start()
    try:
        before = pool.child_pids()
        with pytest.raises(ExtractError) as failure:
            await pool.extract(str(bomb_path))
        assert failure.value.reason == "memory" and "memory limit" in failure.value.message
        after = pool.child_pids()
        assert after and after != before and not alive(before[0])  # replaced by a fresh child
        result = await pool.extract(str(SYNTHETIC / "invoice_1p.pdf"))
        assert result["page_count"] == 1 and "INVOICE" in result["pages"][0]["text"]
    finally:
        await pool.stop()


async def test_document_wall_clock_limit_kills_and_replaces_the_child() -> None:
    pool = ExtractPool(1, PoolLimits(doc_timeout_s=1.0))
    await pool.start()
    try:
        await pool.extract(str(SYNTHETIC / "invoice_1p.pdf"))  # the child is up and warm
        before = pool.child_pids()
        with pytest.raises(ExtractError) as failure:
            await pool.extract(str(PLUMBER / "chelsea_pdta.pdf"))  # 65 pages of tables: ~9 s
        assert failure.value.reason == "timeout" and "1 s" in failure.value.message
        assert not alive(before[0]) and pool.child_pids() != before
        result = await pool.extract(str(SYNTHETIC / "letter_1p.pdf"))
        assert result["page_count"] == 1
    finally:
        await pool.stop()


async def test_page_time_limit_skips_tables_not_the_document() -> None:
    pool = ExtractPool(1, PoolLimits(page=Limits(page_timeout_s=0.001)))
    await pool.start()
    try:
        # A rotated page: its table needs pdfplumber's parse, which runs out of time.
        result = await pool.extract(str(PLUMBER / "nics-background-checks-2015-11-rotated.pdf"))
        assert result["tables_skipped"] == [1] and result["pages"][0]["tables"] == []
        assert "Alabama" in result["pages"][0]["text"]  # pdfium's text is kept
    finally:
        await pool.stop()


async def test_page_cap_and_parser_errors_keep_the_child() -> None:
    pool = ExtractPool(1, PoolLimits(page=Limits(max_pages=5)))
    await pool.start()
    try:
        with pytest.raises(ExtractError) as failure:
            await pool.extract(str(SYNTHETIC / "invoice_10p.pdf"))
        assert failure.value.reason == "too_many_pages" and "10 pages" in failure.value.message
        pids = pool.child_pids()
        with pytest.raises(ExtractError) as failure:
            await pool.extract(str(PLUMBER / "empty.pdf"))
        assert failure.value.reason == "unreadable"
        assert pool.child_pids() == pids  # a parse error does not cost a process start
    finally:
        await pool.stop()


async def test_inflate_bomb_through_the_worker_fails_with_memory(
    stack: Stack, extract_worker: object, outcomes: Outcomes, bomb_path: Path
) -> None:
    event = await upload(stack, bomb_path)
    done = await outcomes.terminal(event.document_id)
    assert isinstance(done, DocumentFailed), done
    assert done.reason == "memory" and done.final and done.attempt == 1
    ok = await upload(stack, SYNTHETIC / "invoice_1p.pdf")
    assert isinstance(await outcomes.terminal(ok.document_id), DocumentExtracted)


async def test_stopping_the_pool_mid_document_is_not_the_documents_fault() -> None:
    pool = ExtractPool(1, PoolLimits())
    await pool.start()
    first_page = asyncio.Event()

    async def on_page(page: int, pages: int) -> None:
        first_page.set()

    running = asyncio.create_task(pool.extract(str(PLUMBER / "chelsea_pdta.pdf"), on_page=on_page))
    await asyncio.wait_for(first_page.wait(), 60)
    await pool.stop()  # a worker's shutdown: the run must be redelivered, not failed as "memory"
    with pytest.raises(PoolStopping):
        await running
