"""Issue 13, item 2 (service side): the child that parses untrusted PDFs holds no secret and reaches no network.

The text worker of the running stack is asked for its extraction and preview children; each one's
`/proc/<pid>/environ` is read (no secret, only Tesseract's paths and thread limit, while the worker
itself holds the platform secret and the NATS secrets' path), its uid checked (unprivileged when the worker is root), and a connection to the stack's
NATS server is tried from inside its network namespace (unreachable; the same connection from the
worker's namespace works). A probe with the child's namespaces and credentials cannot read the NATS
passwords or the worker's environment. And the confined children still extract and render.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from services.extraction.text.handlers import Deps
from services.extraction.text.pool import PASSED_TO_CHILDREN, ExtractPool
from tests.conftest import CORPUS, Stack

ROOT = Path(__file__).resolve().parents[2]
PDF = sorted((CORPUS / "synthetic").glob("*_1p.pdf"))[0]

# Run inside the child's network namespace: connect to host:port, print what happened.
CONNECT_FROM_INSIDE = """
import ctypes, os, socket, sys
pid, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0, "setns failed"
try:
    socket.create_connection((host, port), timeout=3).close()
    print("connected")
except OSError as exc:
    print("refused:", exc)
"""


def nats_address(stack: Stack) -> tuple[str, int]:
    url = urlparse(stack.nats_url.split(",")[0])
    return url.hostname or "127.0.0.1", url.port or 4222


@pytest.fixture
def worker(stack: Stack) -> Deps:
    if "extract" not in stack.services:
        pytest.skip("the text worker is not among ATRIUM_TEST_SERVICES")
    return stack.services["extract"].deps_as(Deps)


async def children(worker: Deps, pool: ExtractPool) -> list[int]:
    """The pool's children, each past its start-up (confined): a job has run through the pool."""
    work = worker.tmp_dir / f"sandbox-test-{os.getpid()}.pdf"
    work.write_bytes(PDF.read_bytes())
    work.chmod(0o600)  # as the worker's own temp files are
    out = Path(tempfile.mkdtemp(prefix="previews-", dir=worker.tmp_dir))
    try:
        if pool is worker.previews:
            assert await pool.render_previews(str(work), str(out), [1]) == [1]
            assert (out / "1.png").stat().st_size > 0
        else:
            result = await pool.extract(str(work))
            assert result["page_count"] == 1 and result["pages"][0]["text"].strip()
    finally:
        work.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
    return pool.child_pids()


async def test_the_parser_child_has_no_secret_in_its_environment(worker: Deps) -> None:
    assert os.environ.get("ATRIUM_SECRET") and os.environ.get("ATRIUM_NATS_SECRETS")  # the worker holds them
    for pool in (worker.pool, worker.previews):
        for pid in await children(worker, pool):
            raw = Path(f"/proc/{pid}/environ").read_bytes()
            names = {entry.split(b"=", 1)[0].decode() for entry in raw.split(b"\0") if entry}
            # Only where Tesseract's languages are, and its thread limit: paths and a number.
            assert names <= {"OMP_THREAD_LIMIT", *PASSED_TO_CHILDREN}, names
            assert os.environ["ATRIUM_SECRET"].encode() not in raw


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch applies to a worker started as root")
async def test_a_root_workers_child_runs_unprivileged(worker: Deps) -> None:
    for pool in (worker.pool, worker.previews):
        for pid in await children(worker, pool):
            status = Path(f"/proc/{pid}/status").read_text()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert set(uid_line.split()[1:]) == {"65534"}, uid_line
            assert "NoNewPrivs:\t1" in status


async def test_no_connection_from_inside_the_child(stack: Stack, worker: Deps) -> None:
    host, port = nats_address(stack)
    socket.create_connection((host, port), timeout=3).close()  # reachable from the worker's namespace
    for pool in (worker.pool, worker.previews):
        for pid in await children(worker, pool):
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
            probe = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", CONNECT_FROM_INSIDE, str(pid), host, str(port)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert probe.returncode == 0, probe.stderr
            assert probe.stdout.startswith("refused:"), probe.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch applies to a worker started as root")
async def test_the_childs_credentials_cannot_read_the_workers_secrets(stack: Stack, worker: Deps) -> None:
    pid = (await children(worker, worker.pool))[0]
    secrets = stack.data_dir / "secrets" / "nats.json"
    assert secrets.read_text()  # the worker can
    code = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path).read(); print('read', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.errno)\n"
    )
    probe = await asyncio.to_thread(
        subprocess.run,
        [
            "nsenter", f"--target={pid}", "--net", "--mount", "--setuid=65534", "--setgid=65534", "--",
            sys.executable, "-c", code, str(secrets), f"/proc/{os.getpid()}/environ",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("refused") for line in lines), probe.stdout


async def test_the_confined_children_still_extract_and_render(worker: Deps) -> None:
    assert await children(worker, worker.pool) and await children(worker, worker.previews)
