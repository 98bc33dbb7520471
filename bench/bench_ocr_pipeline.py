"""OCR throughput upload → ready through the real pipeline, with 1 and 2 text workers, against OCRmyPDF and
the bare Tesseract CLI on the same pages, in the same run.

- Atrium: its own stack (embedded NATS + PostgreSQL; auth, permissions, docs, the text worker, the ai
  worker with the offline builtin field extractor — "AI off" — and the gateway, each its own process as
  `atrium up` runs them). Every document of the workload is uploaded through the gateway in a burst
  (each copy of a file made unique by a trailing PDF comment, so none is a duplicate) and the clock stops
  when the last one is `ready`; then a second text worker process joins and the burst is repeated (a fresh
  user each time). Per document: upload → ready latency, and where its time went — waiting for a worker,
  the extraction task (its OCR steps from the stored result: render, prepare = turn/deskew/rule removal,
  recognize = Tesseract, text_layer, and the rest: fetching the original, classification, storing the
  result), the hand-over to the ai worker, the AI fields, and the documents service recording the fields.
- OCRmyPDF and the Tesseract CLI: `bench/bench_ocr.py`'s runs (same languages, `--force-ocr --deskew
  --output-type pdf -j N`, documents in turn; the CLI on a 300 dpi render, N processes).

Quality per page against `corpus/scanned/expected_text.json` (word recall and CER, as bench_ocr).

    python -m bench.bench_ocr_pipeline [--copies 2] [--files scan_invoice_10p.pdf,...] [--no-write]

OCRmyPDF is Debian's `ocrmypdf` package (`apt-get install ocrmypdf`); without it its rows are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.bench_ocr import (
    FILES,
    LANGUAGES,
    SCANNED,
    Run,
    load,
    ocrmypdf,
    quality,
    render_pages,
    tesseract_cli,
    tool_version,
    truth,
    workload,
)
from bench.bench_pipeline import cpu_seconds
from bench.results import percentile, publish
from bench.stack import PASSWORD, BenchStack
from contracts.documents import OBJECT_BUCKET, ExtractionResult, result_object_name

SERVICES = ("auth", "permissions", "docs", "extract", "ai")
ADMIN_EMAIL = "bench-admin@example.com"
SETTINGS = "/apps/documents/settings"
DONE = ("ready", "needs_ocr", "failed")
# Where a document's time goes, in order (seconds per document).
STAGES = (
    "upload",
    "queued",
    "render",
    "prepare",
    "recognize",
    "text_layer",
    "extract other",
    "hand-over",
    "AI fields",
    "record fields",
)
EXTRACT_STAGES = ("render", "prepare", "recognize", "text_layer", "extract other")  # the extraction task


@dataclass
class PipelineRun:
    run: Run
    latencies: list[float] = field(default_factory=list)  # upload start → ready, per document
    stages: dict[str, list[float]] = field(default_factory=dict)  # stage → seconds per document


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def set_languages(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """OCR in the bench's languages; the ai service accepts them once the text worker announced them."""
    deadline = time.monotonic() + 60
    while True:
        r = await client.patch(SETTINGS, json={"ocr_languages": list(LANGUAGES)}, headers=admin)
        if r.status_code == 200:
            await asyncio.sleep(2)  # the workers follow the settings key (KV watch)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"OCR languages not accepted: {r.text}")
        await asyncio.sleep(1)


async def upload(client: httpx.AsyncClient, headers: dict[str, str], name: str, tag: str) -> str:
    body = (SCANNED / name).read_bytes() + f"\n% {tag}\n".encode()  # a unique copy, still the same PDF
    r = await client.post("/documents", headers=headers, files={"file": (name, body, "application/pdf")})
    assert r.status_code == 201, r.text
    return str(r.json()["documents"][0]["document"]["id"])


async def wait_all(
    client: httpx.AsyncClient, headers: dict[str, str], ids: set[str]
) -> dict[str, dict[str, Any]]:
    """Until every document is done; one list request a second (not one per document: the machine is busy)."""
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        r = await client.get("/documents", params={"limit": 200}, headers=headers)
        items = {i["id"]: i for i in r.json()["items"] if i["id"] in ids}
        if len(items) == len(ids) and all(i["status"] in DONE for i in items.values()):
            return items
        await asyncio.sleep(1.0)
    raise TimeoutError("documents not ready within an hour")


async def read_steps(stack: BenchStack, doc_id: str, run_id: str) -> dict[str, float]:
    nc = await stack.connect()
    try:
        store = await nc.jetstream().object_store(OBJECT_BUCKET)
        got = await store.get(result_object_name(uuid.UUID(doc_id), uuid.UUID(run_id)))
        result = ExtractionResult.model_validate_json(got.data or b"")
        return dict(result.ocr.step_seconds) if result.ocr else {}
    finally:
        await nc.close()


async def pipeline(
    stack: BenchStack, client: httpx.AsyncClient, files: list[str], workers: int, tag: str
) -> PipelineRun:
    headers = {"Authorization": f"Bearer {await stack.user_token(client)}"}
    # Warm-up: one page per worker, so each worker's child has loaded Tesseract's models, as in a running stack.
    warm = {await upload(client, headers, "scan_letter_1p.pdf", f"{tag}-warm-{i}") for i in range(workers)}
    await wait_all(client, headers, warm)
    pids = [p.pid for label, p in stack.procs.items() if label.startswith("extract")]
    cpu, before = cpu_seconds(pids), load()
    started_wall, started = time.time(), time.perf_counter()
    sent: dict[str, tuple[str, int, float, float]] = {}  # id → (file, copy, upload started, upload done)
    for copy, name in enumerate(files):
        t0 = time.time()
        doc_id = await upload(client, headers, name, f"{tag}-{copy}")
        sent[doc_id] = (name, copy, t0, time.time())
    items = await wait_all(client, headers, set(sent))
    finished = max(ts(i["updated_at"]) for i in items.values())
    seconds = finished - started_wall
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pids) - cpu
    run = Run(f"Atrium upload → ready, {workers} text worker(s)", workers, seconds, 0, before, load(), cpu)
    out = PipelineRun(run, stages={s: [] for s in STAGES})
    for doc_id, (name, copy, t0, t1) in sent.items():
        item = items[doc_id]
        assert item["status"] == "ready", (name, item["status"], item.get("failure_message"))
        detail = (await client.get(f"/documents/{doc_id}", headers=headers)).json()
        for page in detail["pages"]:
            run.texts[(name, page["number"], copy)] = page["text"]
        tasks = {t["kind"]: t for t in detail["tasks"]}
        ex, an = tasks["extract"], tasks["analyze"]
        steps = await read_steps(stack, doc_id, detail["run_id"])
        extract_s = ts(ex["finished_at"]) - ts(ex["started_at"])
        got = {
            "upload": t1 - t0,
            "queued": ts(ex["started_at"]) - t1,
            **{k: steps.get(k, 0.0) for k in ("render", "prepare", "recognize", "text_layer")},
            "extract other": extract_s - sum(steps.values()),
            "hand-over": ts(an["started_at"]) - ts(ex["finished_at"]),
            "AI fields": ts(an["finished_at"]) - ts(an["started_at"]),
            "record fields": ts(item["updated_at"]) - ts(an["finished_at"]),
        }
        for stage, s in got.items():
            out.stages[stage].append(s)
        out.latencies.append(ts(item["updated_at"]) - t0)
    run.pages = len(run.texts)
    print(
        f"{run.engine}: {run.pages_per_s:.3f} pages/s in {seconds:.1f} s (poll {elapsed:.1f} s), load {before:.1f}"
    )
    return out


async def main(names: list[str], copies: int) -> str:
    expected = truth()
    files = workload(names, copies)
    work = Path(tempfile.mkdtemp(prefix="bench-ocr-pipeline-"))
    uptimes: list[str] = []
    ours: dict[int, PipelineRun] = {}
    theirs: list[Run] = []
    try:
        pages = render_pages(files, work)
        stack = BenchStack(
            work / "stack",
            SERVICES,
            {"ATRIUM_ADMIN_EMAIL": ADMIN_EMAIL, "ATRIUM_ADMIN_PASSWORD": PASSWORD},
        )
        (work / "stack").mkdir()
        try:
            await stack.start(timeout_s=300)  # a loaded machine starts the processes slowly
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=300) as client:
                await set_languages(client, await sign_in(client, ADMIN_EMAIL))
                for workers in (1, 2):
                    if workers == 2:
                        stack.add_process("extract", "extract-2")
                        await asyncio.sleep(8)  # it connects and binds to the shared durable consumer
                    uptimes.append(uptime())
                    ours[workers] = await pipeline(stack, client, files, workers, f"w{workers}")
        finally:
            stack.stop()
        for jobs in (1, 2):
            if shutil.which("ocrmypdf"):
                uptimes.append(uptime())
                theirs.append(await asyncio.to_thread(ocrmypdf, files, jobs, work))
                print(f"ocrmypdf -j {jobs}: {theirs[-1].pages_per_s:.3f} pages/s")
            uptimes.append(uptime())
            theirs.append(await asyncio.to_thread(tesseract_cli, pages, jobs))
            print(f"tesseract ×{jobs}: {theirs[-1].pages_per_s:.3f} pages/s")
        uptimes.append(uptime())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(expected, names, copies, len(pages), ours, theirs, uptimes)


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S', time.gmtime())} load {one:.2f} {five:.2f} {fifteen:.2f}"


def report(
    expected: dict[str, list[str]],
    names: list[str],
    copies: int,
    n_pages: int,
    ours: dict[int, PipelineRun],
    theirs: list[Run],
    uptimes: list[str],
) -> str:
    rows = [ours[w].run for w in sorted(ours)] + theirs
    ocrmypdf_runs = {r.cores: r for r in theirs if r.engine.startswith("OCRmyPDF")}
    lines = [
        "## OCR throughput upload → ready: the pipeline with 1 and 2 text workers, OCRmyPDF, Tesseract CLI",
        "",
        f"`python -m bench.bench_ocr_pipeline` — {n_pages} pages: {copies}× each of `corpus/scanned`'s "
        f"{', '.join(names)}, longest first. Atrium: its own stack (embedded NATS + PostgreSQL; auth, "
        "permissions, docs, the text worker(s), the ai worker with the builtin field extractor — AI off — and "
        "the gateway, each a process), every document uploaded through the gateway in one burst, clock from "
        "the first upload to the last document's `ready`; one text worker (one pool child), then a second "
        f"worker process. Languages {'+'.join(LANGUAGES)} everywhere, Tesseract with `OMP_THREAD_LIMIT=1`. "
        f"Baselines in the same run: {tool_version(['ocrmypdf', '--version'])} "
        "`--force-ocr --deskew --output-type pdf -j N` (Python API, documents in turn), and the bare "
        "Tesseract CLI on a 300 dpi render (rendering not timed), N processes. CPU s/page: user + system of "
        "the text workers and their OCR children (Atrium; gateway, docs, ai, NATS and PostgreSQL not "
        "counted), of every process for the baselines.",
        "",
        "| engine | cores / workers | pages/s | × OCRmyPDF same cores | CPU s/page | doc latency median s "
        "| doc latency p95 s | min word recall | mean word recall | mean CER | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in rows:
        low, mean, cer, _ = quality(run, expected)
        lat = next((p.latencies for p in ours.values() if p.run is run), [])
        ref = ocrmypdf_runs.get(run.cores)
        ratio = f"{run.pages_per_s / ref.pages_per_s:.2f}×" if ref else ""
        med = f"{statistics.median(lat):.1f}" if lat else ""
        p95 = f"{percentile(lat, 95):.1f}" if lat else ""
        lines.append(
            f"| {run.engine} | {run.cores} | {run.pages_per_s:.3f} | {ratio} | {run.cpu_seconds / run.pages:.2f} "
            f"| {med} | {p95} | {low:.1%} | {mean:.1%} | {cer:.1%} | {run.load_before:.1f} → {run.load_after:.1f} |"
        )
    lines.append("")
    if 1 in ours and 2 in ours:
        lines.append(
            f"- Two text workers vs one: {ours[2].run.pages_per_s / ours[1].run.pages_per_s:.2f}× pages/s "
            "(goal ≥ 1.7×)."
        )
    for w, p in sorted(ours.items()):
        extracting = sum(sum(p.stages[s]) for s in EXTRACT_STAGES) / p.run.seconds
        lines.append(
            f"- {w} text worker(s): documents in extraction at once {extracting:.2f} on average (of {w}); "
            f"CPU time the workers and their OCR children got: {p.run.cpu_seconds / p.run.seconds:.2f} cores "
            f"(of {w} they could use)."
        )
    for w, p in sorted(ours.items()):
        ref = ocrmypdf_runs.get(w)
        if ref:
            low, _, _, _ = quality(p.run, expected)
            ref_low, _, _, _ = quality(ref, expected)
            lines.append(
                f"- {w} core(s): Atrium {p.run.pages_per_s / ref.pages_per_s:.2f}× OCRmyPDF's pages/s "
                f"(goal ≥ 1.5×), min word recall {low:.1%} vs {ref_low:.1%}."
            )
    lines += [
        "",
        "Where a document's time goes (seconds per document, median and p95 over the burst's documents; "
        "“queued” is waiting for a free worker, which a burst makes most of the latency):",
        "",
        "| stage | " + " | ".join(f"{w} worker(s) median | p95 | share of sum" for w in sorted(ours)) + " |",
        "| --- | " + " | ".join("---: | ---: | ---:" for _ in ours) + " |",
    ]
    totals = {w: sum(sum(v) for v in p.stages.values()) for w, p in ours.items()}
    for stage in STAGES:
        cells = []
        for w in sorted(ours):
            values = ours[w].stages[stage]
            cells.append(
                f"{statistics.median(values):.2f} | {percentile(values, 95):.2f} | "
                f"{sum(values) / totals[w]:.0%}"
            )
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "“render”: pdfium drawing the page (a 150 dpi look for skew and orientation, then the page at its scan "
        "resolution, turned and straightened); “prepare”: skew/orientation analysis and ruling-line removal "
        "(the deskew); “recognize”: Tesseract through tesserocr; “text_layer”: writing the PDF with text "
        "layer; “extract other”: fetching the original, classifying pages, storing the result; “hand-over”: "
        "DocumentExtracted → the ai worker starts (the documents service records the pages in PostgreSQL "
        "meanwhile); “AI fields”: the builtin extractor; “record fields”: DocumentAnalyzed → the documents "
        "service writes the fields and `ready` (PostgreSQL).",
        "",
        "`uptime` during the run: " + "; ".join(uptimes) + ".",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--files", default=",".join(FILES))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = asyncio.run(main(args.files.split(","), args.copies))
    publish("ocr-pipeline", body, write=not args.no_write)
