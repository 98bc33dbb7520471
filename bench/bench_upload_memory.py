"""Peak memory of the gateway process while it streams a 50 MB upload into the Object Store.

Starts its own stack (embedded NATS and PostgreSQL; auth, permissions and docs services and the
gateway each as their own process, as `atrium up` runs them), signs a user in and uploads a PDF of
just under the 50 MB limit as a chunked multipart body. The gateway's peak resident set is read from
/proc (`VmHWM`, reset through `clear_refs` right before each upload), so the growth is
peak-during-upload minus resident-before. Baseline, same run: the growth for a 1 MB upload.
Goal: a 50 MB upload grows the gateway by less than 30 MB.

    python -m bench.bench_upload_memory [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.results import publish
from bench.stack import BenchStack

MB = 1024 * 1024
GOAL_MB = 30.0
SERVICES = ("auth", "permissions", "docs")


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


async def body(boundary: str, size: int) -> AsyncIterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    ).encode()
    block = os.urandom(MB)  # distinct from run to run only per process: enough, the content is not compared
    left = size
    while left > 0:
        piece = block[: min(left, MB)]
        left -= len(piece)
        yield piece
    yield f"\r\n--{boundary}--\r\n".encode()


async def upload_growth(client: httpx.AsyncClient, token: str, pid: int, size: int) -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    before_kb = proc_kb(pid, "VmRSS")
    reset_peak(pid)
    t0 = time.perf_counter()
    r = await client.post(
        "/documents",
        content=body(boundary, size),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    seconds = time.perf_counter() - t0
    assert r.status_code == 201, r.text
    peak_kb = proc_kb(pid, "VmHWM")
    doc = r.json()["documents"][0]["document"]
    await client.delete(f"/documents/{doc['id']}", headers={"Authorization": f"Bearer {token}"})
    return {"growth_mb": (peak_kb - before_kb) / 1024, "seconds": seconds, "before_mb": before_kb / 1024}


async def run(repeat: int) -> dict[str, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-upload-") as tmp:
        stack = BenchStack(Path(tmp), SERVICES)
        try:
            await stack.start()
            pid = stack.procs["gateway"].pid
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=300) as client:
                token = await stack.user_token(client)
                await upload_growth(client, token, pid, MB)  # warm-up: imports, connections, the bucket
                out: dict[str, list[dict[str, Any]]] = {"1 MB (baseline)": [], "50 MB": []}
                for _ in range(repeat):
                    out["1 MB (baseline)"].append(await upload_growth(client, token, pid, MB))
                    out["50 MB"].append(await upload_growth(client, token, pid, 50 * MB - 4096))
                return out
        finally:
            stack.stop()


def report(results: dict[str, list[dict[str, Any]]], repeat: int) -> str:
    base = statistics.median(r["growth_mb"] for r in results["1 MB (baseline)"])
    lines = [
        "## Documents: gateway memory during a 50 MB upload",
        "",
        f"`python -m bench.bench_upload_memory` — own stack (embedded NATS + PostgreSQL; auth, permissions, docs "
        f"and the gateway as separate processes). Chunked multipart upload; the gateway's peak RSS (`VmHWM`, reset "
        f"before each upload) minus its RSS right before. {repeat} uploads per size after a warm-up. Baseline, "
        "same run: a 1 MB upload. Goal: growth under 30 MB for 50 MB.",
        "",
        "| upload | growth median MB | growth max MB | × baseline | median s | MB/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in results.items():
        g = [r["growth_mb"] for r in rows]
        s = statistics.median(r["seconds"] for r in rows)
        size = 1 if name.startswith("1 MB") else 50
        ratio = statistics.median(g) / base if base > 0 else float("nan")
        lines.append(
            f"| {name} | {statistics.median(g):.1f} | {max(g):.1f} | {ratio:.1f} | {s:.2f} | {size / s:.1f} |"
        )
    worst = max(r["growth_mb"] for r in results["50 MB"])
    lines += ["", f"Worst growth for 50 MB: {worst:.1f} MB — goal {'met' if worst < GOAL_MB else 'NOT met'}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = asyncio.run(run(args.repeat))
    text = report(results, args.repeat)
    publish("docs-upload-memory", text)


if __name__ == "__main__":
    main()
