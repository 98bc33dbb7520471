"""Page previews on demand: what a reader waits for the first time a page is shown, and after.

Starts its own stack (embedded NATS and PostgreSQL; auth, permissions, docs, the text worker and the
gateway as separate processes), uploads a mix of corpus files (AI off) and waits until each is
extracted. Then, per document, through the gateway as the browser asks:
- first page, cold: the worker fetches the original and renders the page's batch (pages 1–8), page 1
  first, and the answer comes once page 1 is stored;
- the rest of that batch: rendered meanwhile or being rendered;
- the first page of the next batch (9): rendered now, the original still on the worker's disk;
- the first page again: stored, as every later visit.
Baseline, same run: that last one, a stored preview streamed from the Object Store (which is what
every request cost when all previews were rendered during extraction).

    python -m bench.bench_previews [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.results import CORPUS, publish, summary
from bench.stack import BenchStack

PDFS = Path("public") / "pdfplumber"
FILES = [
    Path("synthetic") / "letter_10p.pdf",
    Path("synthetic") / "invoice_10p.pdf",
    PDFS / "tests" / "pdfs" / "federal-register-2020-17221.pdf",
    PDFS / "examples" / "pdfs" / "ca-warn-report.pdf",
    PDFS / "tests" / "pdfs" / "chelsea_pdta.pdf",
]
SERVICES = ("auth", "permissions", "docs", "extract")


async def extracted(client: httpx.AsyncClient, headers: dict[str, str], doc_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = (await client.get(f"/documents/{doc_id}", headers=headers)).json()
        if body["status"] in ("analyzing", "ready", "needs_ocr", "failed"):  # no AI worker here: analyzing
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise TimeoutError(doc_id)


async def timed_get(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> float:
    t0 = time.perf_counter()
    r = await client.get(url, headers=headers)
    ms = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", (
        url,
        r.status_code,
        r.text[:200],
    )
    return ms


async def run(rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        "page 1, cold (batch 1–8 starts with it)": [],
        "pages 2–8, same batch": [],
        "page 9, next batch (original cached)": [],
        "stored preview (baseline)": [],
    }
    with tempfile.TemporaryDirectory(prefix="atrium-bench-previews-") as tmp:
        stack = BenchStack(Path(tmp), SERVICES)
        try:
            await stack.start()
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as client:
                headers = {"Authorization": f"Bearer {await stack.user_token(client)}"}
                for round_no in range(rounds + 1):  # round 0 warms up (the worker's preview child starts)
                    for rel in FILES:
                        r = await client.post(
                            "/documents",
                            headers=headers,
                            files={"file": (rel.name, (CORPUS / rel).read_bytes(), "application/pdf")},
                        )
                        assert r.status_code == 201, r.text
                        doc = await extracted(client, headers, r.json()["documents"][0]["document"]["id"])
                        base = f"/documents/{doc['id']}/pages"
                        first = await timed_get(client, headers, f"{base}/1/preview")
                        same = [
                            await timed_get(client, headers, f"{base}/{n}/preview")
                            for n in range(2, min(8, doc["preview_pages"]) + 1)
                        ]
                        nxt = (
                            await timed_get(client, headers, f"{base}/9/preview")
                            if doc["preview_pages"] >= 9
                            else None
                        )
                        stored = await timed_get(client, headers, f"{base}/1/preview")
                        await client.delete(f"/documents/{doc['id']}", headers=headers)
                        if round_no == 0:
                            continue
                        out["page 1, cold (batch 1–8 starts with it)"].append(first)
                        out["pages 2–8, same batch"] += same
                        if nxt is not None:
                            out["page 9, next batch (original cached)"].append(nxt)
                        out["stored preview (baseline)"].append(stored)
        finally:
            stack.stop()
    return out


def report(results: dict[str, list[float]], rounds: int, load: float) -> str:
    base = statistics.median(results["stored preview (baseline)"])
    lines = [
        "## Documents: page previews rendered on demand",
        "",
        f"`python -m bench.bench_previews` — own stack (embedded NATS + PostgreSQL; auth, permissions, docs, the "
        f"text worker and the gateway as separate processes), {len(FILES)} corpus files (10-page synthetic letter "
        f"and invoice, a 15-page register, a 16-page report, 65 pages of tables) × {rounds} rounds after a warm-up "
        "round, each uploaded fresh. Times are HTTP round trips through the gateway as a browser asks for the "
        "pages in order. Baseline, same run: a stored preview (what every request cost when previews were "
        f"rendered during extraction). Load average at the start: {load:.1f}.",
        "",
        "| request | n | median ms | p95 ms | × baseline (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in results.items():
        s = summary(values)
        lines.append(
            f"| {name} | {len(values)} | {s['median']:.1f} | {s['p95']:.1f} | {s['median'] / base:.1f} |"
        )
    lines += [
        "",
        "Extraction no longer renders anything, so the pipeline pays nothing for pages nobody opens "
        "(see the pipeline section).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = asyncio.run(run(args.rounds))
    text = report(results, args.rounds, load)
    publish("docs-previews", text)


if __name__ == "__main__":
    main()
