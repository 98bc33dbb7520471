"""Pipeline throughput, upload → extracted (AI off): the text worker as real processes on a real
NATS server, against raw pdfplumber (extract_text + extract_tables on every page, one process) on
the same files in the same run.

Per configuration (engine × 1 or 2 worker processes, one extraction child each) and repetition,
every document of the workload is stored in the Object Store and announced with DocumentUploaded
in a burst (what the gateway and the documents service do), and the clock stops at the last
DocumentExtracted. Throughput = pages (or documents) / that wall time.

    python -m bench.bench_pipeline [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from bench.results import CORPUS, ROOT, percentile, publish
from contracts import REGISTRY, Header
from contracts.documents import (
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    DocumentExtracted,
    DocumentUploaded,
)
from infra.embedded import EmbeddedNats
from infra.nats.accounts import OPERATOR
from services.kit.bus import ensure_object_store, ensure_streams
from services.kit.config import nats_login

WORKLOAD = [
    CORPUS / "synthetic" / n for n in ("invoice_1p.pdf", "invoice_10p.pdf", "letter_1p.pdf", "letter_10p.pdf")
] + [
    CORPUS / "public" / p
    for p in (
        "pdfplumber/tests/pdfs/nics-background-checks-2015-11.pdf",
        "pdfplumber/tests/pdfs/scotus-transcript-p1.pdf",
        "pdfplumber/tests/pdfs/2023-06-20-PV.pdf",
        "pdfplumber/tests/pdfs/pr-138-example.pdf",
        "pdfplumber/tests/pdfs/issue-33-lorem-ipsum.pdf",
        "pdfplumber/tests/pdfs/federal-register-2020-17221.pdf",
        "sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf",
        "sample-files/011-google-doc-document/google-doc-document.pdf",
        "sample-files/026-latex-multicolumn/multicolumn.pdf",
    )
]


def raw_pdfplumber(paths: list[Path]) -> tuple[float, int]:
    """The baseline: what a naive worker does, in this process, one file after another."""
    import pdfplumber

    pages = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for path in paths:
        with pdfplumber.open(path) as pdf:
            for page in pdf.pages:
                page.extract_text()
                page.extract_tables()
                page.close()  # as the worker does: without it pdfplumber's page caches pile up
                pages += 1
    LAST_CPU[0] = time.process_time() - cpu_started
    return time.perf_counter() - started, pages


LAST_CPU = [0.0]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the worker processes and their extraction children, from /proc."""
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class Pipeline:
    def __init__(self, nc: Any):
        self.nc = nc
        self.js = nc.jetstream()
        self.done: dict[uuid.UUID, tuple[float, DocumentExtracted | None]] = {}
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self.store = await ensure_object_store(self.js, OBJECT_BUCKET)

        async def on_extracted(msg: Any) -> None:
            e = DocumentExtracted.model_validate_json(msg.data)
            self.done[e.document_id] = (time.perf_counter(), e)
            self.changed.set()

        async def on_failed(msg: Any) -> None:
            import json

            d = json.loads(msg.data)
            if d["final"]:
                self.done[uuid.UUID(d["document_id"])] = (time.perf_counter(), None)
                self.changed.set()

        await self.nc.subscribe(DOCUMENT_EXTRACTED.subject, cb=on_extracted)
        await self.nc.subscribe(DOCUMENT_FAILED.subject, cb=on_failed)

    async def submit(self, path: Path) -> tuple[uuid.UUID, float]:
        document_id = uuid.uuid4()
        t0 = time.perf_counter()
        with path.open("rb") as f:
            info = await self.store.put(str(document_id), f)
        event = DocumentUploaded(
            document_id=document_id,
            owner_id=uuid.uuid4(),
            run_id=uuid.uuid4(),
            filename=path.name,
            size=info.size,
            sha256="0" * 64,
            object_name=str(document_id),
            uploaded_at=datetime.now(UTC),
        )
        await self.js.publish(
            DOCUMENT_UPLOADED.subject,
            event.model_dump_json().encode(),
            headers={Header.MSG_ID: f"{document_id}:{event.run_id}"},
        )
        return document_id, t0

    async def wait(self, ids: list[uuid.UUID], timeout: float = 600) -> None:
        async def loop() -> None:
            while not all(i in self.done for i in ids):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


def start_workers(nats_url: str, engine: str, replicas: int, data: Path) -> list[subprocess.Popen[bytes]]:
    # ATRIUM_DATA: each worker logs in to NATS as `extract` with the password in <data>/secrets
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "PYTHONPATH": str(ROOT),
        "ATRIUM_EXTRACT_ENGINE": engine,
        "LOG_LEVEL": "WARNING",
        "ATRIUM_DATA": str(data),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "services.extraction.text"],
            cwd=ROOT,
            env=env,
            stdout=(data / f"{engine}-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(replicas)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def run_config(pipe: Pipeline, nats_url: str, engine: str, replicas: int, data: Path) -> dict[str, Any]:
    """One repetition of one configuration: fresh workers, warm-up, one burst of the workload."""
    procs = start_workers(nats_url, engine, replicas, data)
    try:
        # Warm-up until every replica has finished a document (started, connected, child imported).
        workers: set[str] = set()
        while len(workers) < replicas:
            ids = [(await pipe.submit(WORKLOAD[2]))[0] for _ in range(replicas * 2)]
            await pipe.wait(ids, 120)
            workers |= {pipe.done[i][1].worker for i in ids if pipe.done[i][1]}  # type: ignore[union-attr]
        pids = [p.pid for p in procs]
        cpu_before = cpu_seconds(pids)
        started = time.perf_counter()
        submitted = [await pipe.submit(p) for p in WORKLOAD]
        ids = [i for i, _ in submitted]
        await pipe.wait(ids)
        cpu = cpu_seconds(pids) - cpu_before
        results = [pipe.done[i][1] for i in ids]
        assert all(results), f"{engine}: some documents failed"
        return {
            "wall": max(pipe.done[i][0] for i in ids) - started,
            "cpu": cpu,
            "pages": sum(r.page_count for r in results if r),
            "docs": len(ids),
            "latencies": [pipe.done[i][0] - t0 for i, t0 in submitted],
        }
    finally:
        stop_workers(procs)


CONFIGS = [("pdfplumber", 1), ("pdfplumber", 2), ("hybrid", 1), ("hybrid", 2)]


async def main(reps: int) -> str:
    data = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    server = EmbeddedNats(data).start()
    load_before = os.getloadavg()[0]
    try:
        nc = await nats.connect(server.url, **nats_login(OPERATOR, data).connect_options())
        await ensure_streams(nc.jetstream(), list(REGISTRY.streams.values()))
        pipe = Pipeline(nc)
        await pipe.start()
        raw_pdfplumber(WORKLOAD[:1])  # import and warm up
        # The machine is shared, so its speed drifts: every repetition runs the baseline, then each
        # configuration, then the baseline again, and each configuration is compared with the mean
        # of the baselines around it.
        baselines = [raw_pdfplumber(WORKLOAD)]
        base_cpu = [LAST_CPU[0]]
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in CONFIGS}
        for _ in range(reps):
            for engine, replicas in CONFIGS:
                runs[(engine, replicas)].append(await run_config(pipe, server.url, engine, replicas, data))
            baselines.append(raw_pdfplumber(WORKLOAD))
            base_cpu.append(LAST_CPU[0])
        await nc.close()
    finally:
        server.stop()

    pages = baselines[0][1]
    base_pps = [p / t for t, p in baselines]
    lines = [
        "## Pipeline throughput (`python -m bench.bench_pipeline`)",
        "",
        f"Workload: {len(WORKLOAD)} documents, {pages} pages per repetition — the 1- and 10-page synthetic "
        "invoices and letters and 9 public files (tables, prose, LaTeX, office, a 15-page register). "
        "Upload (Object Store put + DocumentUploaded) → DocumentExtracted, AI off, embedded NATS; worker "
        "processes (`python -m services.extraction.text`) with one extraction child each, started fresh "
        f"for each of {reps} repetitions per configuration. Baseline: raw pdfplumber (extract_text + "
        "extract_tables on every page) in one process, run before and after every repetition; a "
        "configuration's ratio is its throughput over the mean of the two baselines around it (median "
        "over repetitions), because other work on this shared 2-core machine makes its speed drift "
        f"(load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end).",
        "",
        "Wall-clock throughput on a machine this loaded swings by 2–3× from one minute to the next, so "
        "the table also gives pages per CPU-second (worker processes and their extraction children, "
        "from /proc; the baseline's own process time), which measures the pipeline's cost, not the "
        "neighbours: the one-worker goal (≥ 0.9× raw) is about that cost.",
        "",
        "| configuration | pages/s (median) | docs/s (median) | latency median s | latency p95 s | ratio to raw, wall (median; per rep) | pages per CPU-s | ratio to raw, CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| raw pdfplumber, 1 process | {statistics.median(base_pps):.1f} | "
        f"{statistics.median(len(WORKLOAD) / t for t, _ in baselines):.2f} | | | 1.00× | "
        f"{statistics.median(pages / c for c in base_cpu):.1f} | 1.00× |",
    ]
    base_cpu_pps = statistics.median(pages / c for c in base_cpu)
    for (engine, replicas), rs in runs.items():
        pps = [r["pages"] / r["wall"] for r in rs]
        ratios = [x / ((base_pps[k] + base_pps[k + 1]) / 2) for k, x in enumerate(pps)]
        latencies = [x for r in rs for x in r["latencies"]]
        label = (
            f"worker ({'pdfplumber every page' if engine == 'pdfplumber' else 'hybrid engine'}), "
            f"{replicas} process{'es' if replicas > 1 else ''}"
        )
        lines.append(
            f"| {label} | {statistics.median(pps):.1f} | "
            f"{statistics.median(r['docs'] / r['wall'] for r in rs):.2f} | "
            f"{statistics.median(latencies):.2f} | {percentile(latencies, 95):.2f} | "
            f"{statistics.median(ratios):.2f}× ({', '.join(f'{x:.2f}' for x in ratios)}) | "
            f"{statistics.median(r['pages'] / r['cpu'] for r in rs):.1f} | "
            f"{statistics.median(r['pages'] / r['cpu'] for r in rs) / base_cpu_pps:.2f}× |"
        )
    lines += [
        "",
        "Goals: ≥ 0.90× raw with one worker, ≥ 1.7× with two, ≥ 3× with the fast engine. "
        "Latency is per document inside a burst (queueing included). Two workers only help as far as "
        "the second core is free of the other work on this machine. Page previews are not part of "
        "extraction: they are rendered when a reader first opens a page (see the previews section).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = asyncio.run(main(args.reps))
    publish("pipeline", body, write=not args.no_write)
