"""Benchmarks write their own section of bench/RESULTS.md (between markers), leaving the others alone."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

from infra.shared import corpus_dir

ROOT = Path(__file__).resolve().parent.parent
CORPUS = corpus_dir()
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is rewritten by its benchmark (`python -m bench.<name>`).\n"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 95),
        "n": float(len(values)),
    }


def machine() -> str:
    import os

    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"


def publish(name: str, body: str, *, write: bool = True) -> None:
    """Print a benchmark's section and (unless `write` is false) put it into RESULTS.md."""
    print(body)
    if write:
        write_section(name, body)


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    block = f"{start}\n{body.rstrip()}\n\n_{machine()}_\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
