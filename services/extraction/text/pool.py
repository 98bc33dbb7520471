"""A pool of extraction child processes, so a hostile or broken PDF kills a child, never the worker.

Each child is a fresh interpreter (`python -m services.extraction.text.pool <fd>`: no inherited
event loop, threads or sockets, and no re-import of the parent's `__main__` as `spawn` would do),
imports the PDF engines once, sets `RLIMIT_AS`, and then extracts one document at a time,
streaming `("page", n, total)` messages and one final `("done", result)` or `("error", reason,
message)`. The parent enforces the per-document wall clock: past it the child is SIGKILLed and
replaced. A child that dies on its own (pdfium SIGABRTs on inflate bombs) is replaced as well.

A child holds no secret and reaches no network: it starts with an environment of a few paths and
`OMP_THREAD_LIMIT` only (`child_environment`) and confines
itself before anything else (`sandbox.py`: its own network namespace, an unprivileged uid when the
worker is root); the pool lets that uid read each job's input and write its output directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from contracts.documents import FailureReason

from .engine import ExtractError, Limits, OcrJob

log = logging.getLogger("atrium.extract.pool")

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class PoolLimits:
    doc_timeout_s: float = 120.0
    memory_mb: int = 1536
    page: Limits = Limits()
    docs_per_child: int = 200  # recycle now and then: parsers leak and fragment memory


def _die_with_parent(parent_pid: int) -> None:
    """A SIGKILLed worker must not leave its child parsing on (Linux: PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(
    conn: Connection,
    memory_mb: int,
    limits: Limits,
    engine: str,
    parent_pid: int,
    sandbox: dict[str, Any] | None = None,
) -> None:
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a child stops
    _die_with_parent(parent_pid)
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from . import engine as engines

    extract = engines.extract_plumber_only if engine == "pdfplumber" else engines.extract_hybrid
    import pdfplumber  # noqa: F401  (import cost paid once per child, not per document)
    import pypdfium2  # noqa: F401

    def ask_parent(number: int, jpeg: bytes) -> tuple[Any, ...]:
        conn.send(("vision", number, jpeg))
        return conn.recv()  # type: ignore[no-any-return]

    engines.ask_parent = ask_parent  # vision OCR: the request goes out from the worker, not from here
    conn.send(("ready", os.getpid(), sandbox or {}))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            if job[0] == "previews":
                _, path, out_dir, pages = job
                rendered = engines.render_previews(
                    path, out_dir, pages, lambda n, total: conn.send(("page", n, total))
                )
                conn.send(("done", rendered))
            else:
                _, path, ocr, image_pdf = job
                if image_pdf:  # an uploaded image: the PDF made of it is what gets extracted
                    engines.pdf_of_image(path, image_pdf, ocr, limits)
                    path = image_pdf
                # by keyword: the pdfplumber engine takes `first_error` in fourth place
                result = extract(
                    path,
                    limits,
                    lambda n, total: conn.send(("page", n, total)),
                    ocr=ocr,
                    on_ocr=lambda n, total: conn.send(("ocr", n, total)),
                )
                conn.send(("done", result))
        except engines.ExtractError as exc:
            conn.send(("error", exc.reason, exc.message))
        except MemoryError:
            conn.send(("error", "memory", f"Extraction needed more than the {memory_mb} MB memory limit."))
            return  # the heap may be in a poor state; the parent starts a fresh child
        except Exception as exc:
            conn.send(("error", "unreadable", engines._parser_message(exc, None)))


# The only variables a child gets: where Tesseract's languages are (paths, not secrets).
PASSED_TO_CHILDREN = ("ATRIUM_OCR_TESSDATA", "TESSDATA_PREFIX")


def child_environment() -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_TO_CHILDREN if os.environ.get(k)}
    # Tesseract's own threads would fight the pool's processes for the same cores.
    env["OMP_THREAD_LIMIT"] = "1"
    return env


class _Child:
    def __init__(self, limits: PoolLimits, engine: str, child_uid: int = -1):
        ours, theirs = socket.socketpair()
        page = limits.page
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.extraction.text.pool",
                str(theirs.fileno()),
                str(limits.memory_mb),
                str(page.max_pages),
                str(page.page_timeout_s),
                engine,
                str(os.getpid()),
                str(child_uid),
            ],
            pass_fds=[theirs.fileno()],
            env=child_environment(),  # no secret of the worker's; `-m` from ROOT finds the code
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.docs = 0
        self.ready = False
        self.sandbox: dict[str, Any] = {}  # what the child's `sandbox.enter()` reported

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def exitcode(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


async def _recv(conn: Connection, timeout: float) -> Any:
    """The next message, or `None` when nothing arrived within `timeout`; EOFError when the child died."""
    if not await asyncio.to_thread(conn.poll, max(timeout, 0.0)):
        return None
    return await asyncio.to_thread(conn.recv)


def _death_reason(exitcode: int | None, memory_mb: int) -> tuple[FailureReason, str]:
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode)
        if sig in (signal.SIGABRT, signal.SIGKILL, signal.SIGBUS):
            return "memory", (
                f"The parser process was stopped by {sig.name}, typically a stream that inflates "
                f"beyond the {memory_mb} MB memory limit."
            )
        return "unreadable", f"The parser process crashed ({sig.name}) on this PDF."
    return "unreadable", f"The parser process exited unexpectedly (exit code {exitcode})."


class ExtractPool:
    """`await pool.extract(path, on_page=…, heartbeat=…)` → the engine's result dict, or ExtractError;
    `await pool.render_previews(path, out_dir, pages)` → the pages rendered, under the same limits."""

    def __init__(
        self,
        size: int = 1,
        limits: PoolLimits = PoolLimits(),
        engine: str = "hybrid",
        heartbeat_every_s: float = 5.0,
        child_uid: int = -1,
    ):
        self.size = size
        self.limits = limits
        self.engine = engine
        self.child_uid = child_uid  # a root worker's children switch to it (-1: they stay root)
        self.heartbeat_every_s = heartbeat_every_s
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._all: set[_Child] = set()
        self.replaced = 0
        self.stopping = False
        self._starting = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        self._started = True
        for _ in range(self.size):
            await self._idle.put(await self._spawn())

    async def stop(self) -> None:
        self.stopping = True
        for child in list(self._all):
            await asyncio.to_thread(child.stop)
        self._all.clear()

    def child_pids(self) -> list[int]:
        return [c.pid for c in self._all if c.pid]

    async def _spawn(self) -> _Child:
        child = await asyncio.to_thread(_Child, self.limits, self.engine, self.child_uid)
        self._all.add(child)
        return child

    async def _ensure_ready(self, child: _Child) -> _Child:
        """Wait for a fresh child's import; a child that fails to start is replaced once."""
        if child.ready:
            return child
        try:
            msg = await _recv(child.conn, 60)
        except (EOFError, OSError):
            msg = None
        if not msg or msg[0] != "ready":
            await self._discard(child)
            child = await self._spawn()
            msg = await _recv(child.conn, 60)
            if not msg or msg[0] != "ready":
                raise RuntimeError("the extraction child process did not start")
        child.ready = True
        child.sandbox = msg[2] if len(msg) > 2 else {}
        if child.sandbox.get("problems"):
            log.warning("extraction child %s is not fully confined: %s", child.pid, child.sandbox["problems"])
        return child

    async def _discard(self, child: _Child) -> None:
        self._all.discard(child)
        await asyncio.to_thread(child.kill)

    async def extract(
        self,
        path: str,
        *,
        on_page: Callable[[int, int], Awaitable[None]] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
        ocr: OcrJob | None = None,
        on_ocr_page: Callable[[int, int], Awaitable[None]] | None = None,
        image_pdf: str | None = None,
        vision: Callable[[int, bytes], Awaitable[tuple[Any, ...]]] | None = None,
    ) -> dict[str, Any]:
        """Extract `path`; with `ocr`, OCR its pages without a usable text layer as well, hearing
        `on_ocr_page(done, total)` (first with 0) and writing the text layer PDF where the job says. With
        `image_pdf`, `path` is an image: it becomes a PDF there first, and that is extracted. `vision`
        answers the child's page images when the OCR provider is a vision model (ocr/vision.py)."""
        result = await self._job(
            ("extract", path, ocr, image_pdf), on_page, heartbeat, on_ocr_page, ocr, vision
        )
        return result  # type: ignore[no-any-return]

    async def render_previews(
        self,
        path: str,
        out_dir: str,
        pages: list[int],
        *,
        on_page: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> list[int]:
        """Render the 1-based `pages` of `path`, in this order, to `<out_dir>/<n>.png` in a child; `on_page`
        hears of each file as soon as it is written. Returns the pages rendered."""
        return await self._job(("previews", path, out_dir, pages), on_page, None)  # type: ignore[no-any-return]

    async def _job(
        self,
        job: tuple[Any, ...],
        on_page: Callable[[int, int], Awaitable[None]] | None,
        heartbeat: Callable[[], Awaitable[None]] | None,
        on_ocr_page: Callable[[int, int], Awaitable[None]] | None = None,
        ocr: OcrJob | None = None,
        vision: Callable[[int, bytes], Awaitable[tuple[Any, ...]]] | None = None,
    ) -> Any:
        if not self._started and not self.stopping:
            async with self._starting:  # a pool nobody started (the preview pool) starts on first use
                if not self._started:
                    await self.start()
        child = await self._idle.get()
        healthy = False
        try:
            child = await self._ensure_ready(child)
            try:
                result = await self._run(child, job, on_page, heartbeat, on_ocr_page, ocr, vision)
            except _HealthyError as exc:
                healthy = True
                raise ExtractError(exc.reason, exc.message) from None
            healthy = True
            return result
        finally:
            child.docs += 1
            if healthy and child.docs < self.limits.docs_per_child:
                self._idle.put_nowait(child)
            elif not self.stopping:
                await self._discard(child)
                self.replaced += 1
                self._idle.put_nowait(await self._spawn())

    async def _run(
        self,
        child: _Child,
        job: tuple[Any, ...],
        on_page: Callable[[int, int], Awaitable[None]] | None,
        heartbeat: Callable[[], Awaitable[None]] | None,
        on_ocr_page: Callable[[int, int], Awaitable[None]] | None = None,
        ocr: OcrJob | None = None,
        vision: Callable[[int, bytes], Awaitable[tuple[Any, ...]]] | None = None,
    ) -> Any:
        _open_to(child, job)
        child.conn.send(job)
        started = time.monotonic()
        deadline = started + self.limits.doc_timeout_s
        next_beat = started + self.heartbeat_every_s
        ocring = False
        # While OCR runs, each page has its own limit in the child; here a page may take twice that
        # (then the child is stuck where its own limit cannot reach, e.g. inside pdfium) before it is
        # killed, however many pages the document has.
        ocr_window = 2 * ocr.options.page_limit_s + 30 if ocr else 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                child.kill()
                if ocring:
                    raise ExtractError(
                        "timeout",
                        f"OCR of one page took longer than {ocr_window:g} s (the page limit is "
                        f"{ocr.options.page_limit_s:g} s).",  # type: ignore[union-attr]
                    )
                raise ExtractError(
                    "timeout",
                    f"Extraction took longer than the {self.limits.doc_timeout_s:g} s "
                    f"limit for one document.",
                )
            if heartbeat and now >= next_beat:
                next_beat = now + self.heartbeat_every_s
                await heartbeat()
            try:
                msg = await _recv(child.conn, min(deadline - now, max(next_beat - now, 0.05), 1.0))
            except (EOFError, OSError):
                if self.stopping:  # our own shutdown, not the document: let it be redelivered
                    raise PoolStopping("the worker is shutting down") from None
                await asyncio.to_thread(child.proc.wait, 5)
                raise ExtractError(*_death_reason(child.exitcode, self.limits.memory_mb)) from None
            if msg is None:
                continue
            kind = msg[0]
            if kind == "page":
                if on_page:
                    await on_page(msg[1], msg[2])
            elif kind == "ocr":
                ocring = True
                deadline = time.monotonic() + ocr_window
                if on_ocr_page:
                    await on_ocr_page(msg[1], msg[2])
            elif kind == "vision":
                child.conn.send(await self._answer_vision(vision, msg[1], msg[2], heartbeat))
            elif kind == "done":
                return msg[1]
            elif kind == "error":
                if msg[1] == "memory":
                    raise ExtractError(msg[1], msg[2])  # the child exits after a MemoryError
                raise _HealthyError(msg[1], msg[2])

    async def _answer_vision(
        self,
        vision: Callable[[int, bytes], Awaitable[tuple[Any, ...]]] | None,
        number: int,
        jpeg: bytes,
        heartbeat: Callable[[], Awaitable[None]] | None,
    ) -> tuple[Any, ...]:
        """The vision model's answer for one page image, heartbeats going on while it takes (bounded by the
        client's own timeouts, within the page's window)."""
        if vision is None:
            return ("refused", "No vision OCR client was set up for this document.")
        task = asyncio.ensure_future(vision(number, jpeg))
        while not task.done():
            await asyncio.wait({task}, timeout=self.heartbeat_every_s)
            if heartbeat and not task.done():
                await heartbeat()
        return task.result()


def _open_to(child: _Child, job: tuple[Any, ...]) -> None:
    """Let a child that runs under another uid read the job's input (group, read-only) and write its output."""
    uid, gid = child.sandbox.get("uid", -1), child.sandbox.get("gid", -1)
    if uid < 0 or uid == os.geteuid():
        return
    os.chown(job[1], -1, gid)
    os.chmod(job[1], 0o640)
    if job[0] == "previews":
        os.chown(job[2], uid, gid)
    else:
        if getattr(job[2], "text_layer_path", None):  # the OCR's PDF with a text layer
            os.chown(job[2].text_layer_path, uid, gid)
        if job[3]:  # the PDF made of an uploaded image
            os.chown(job[3], uid, gid)


class PoolStopping(RuntimeError):
    """The pool was stopped under a running document; not the document's fault."""


class _HealthyError(ExtractError):
    """An ExtractError after which the child can keep working."""


if __name__ == "__main__":
    fd, memory_mb, max_pages, page_timeout_s, engine_name, parent, uid = sys.argv[1:8]
    from .sandbox import enter

    confined = enter(int(uid))  # before any file is read
    _child_main(
        Connection(int(fd)),
        int(memory_mb),
        Limits(int(max_pages), float(page_timeout_s)),
        engine_name,
        int(parent),
        confined.as_dict(),
    )
