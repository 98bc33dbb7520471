"""Load: 200 locust users against `./atrium up` for 60 s (issue 16), the load generator its own process.

Starts `atrium up` (its own data directory and port, no web build, with Prometheus when installed),
registers `--accounts` accounts and gives each a few documents, then runs `bench/locustfile.py` headless
(`--users` users, spawned at `--spawn-rate` a second, each waiting 1–3 s between actions) and reports p50/p95/p99
and errors per request kind, with the machine's load average and, from the stack's own Prometheus, the
CPU each process used in the last minute of the run (where the time went).

    python -m bench.bench_load [--users 200] [--seconds 60] [--accounts 20] [--spawn-rate 20] [--signed-in]

Signing in costs a core ≈ 75 ms (Argon2id at OWASP's minimum), so how fast users arrive decides whether
sign-in keeps up: 200 people of a team arriving within a minute or two is ≈ 2–4 a second; 20 a second is a
stampede the sign-in admission answers with 503 + Retry-After (the locust users wait and retry, counted
on their own row "sign in: told to retry").
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.results import CORPUS, ROOT, publish
from infra.embedded import free_port

PASSWORD = "a sturdy load-test passphrase 7"
PDF = CORPUS / "synthetic" / "invoice_1p.pdf"
SEED_DOCS = ("invoice_1p.pdf", "letter_1p.pdf", "invoice_10p.pdf")
READS = {"list", "search", "open a document", "me", "live events (connect)"}


def start_stack(data: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        "ATRIUM_AUTH_RATE_EXEMPT_IPS": "127.0.0.1",  # 200 sign-ins from one address are the scenario
        "ATRIUM_SIGNIN_REQUIRES_VERIFIED_EMAIL": "0",  # the accounts are made by this script
    }
    out = open(log, "ab")  # noqa: SIM115  (the stack's output, kept while it runs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up", "--port", str(port), "--data", str(data), "--no-web-build"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Atrium is running at" in text:
            found = re.search(r"Prometheus: (http://\S+)", text)
            return proc, found[1] if found else ""
        if proc.poll() is not None:
            raise RuntimeError(f"atrium up exited:\n{text[-3000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"atrium up did not come up; see {log}")


def seed(base: str, accounts: int) -> list[str]:
    """The accounts with their documents; returns an access token of each."""
    tokens = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for i in range(accounts):
            email = f"load-{i}@example.com"
            client.post("/auth/register", json={"email": email, "password": PASSWORD})
            r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            tokens.append(r.json()["access_token"])
            headers = {"Authorization": f"Bearer {tokens[-1]}"}
            client.cookies.clear()
            for name in SEED_DOCS:
                body = (CORPUS / "synthetic" / name).read_bytes() + f"\n% seed {i}\n".encode()
                files = {"file": (name, body, "application/pdf")}
                client.post("/documents", files=files, headers=headers).raise_for_status()
    return tokens


IN_PIPELINE = ("queued", "extracting", "ocr", "analyzing")
TERMINAL = ("ready", "needs_ocr", "failed")


def pipeline_drain(api: str, tokens: list[str], limit_s: float = 600.0) -> dict[str, Any]:
    """After the load: how many documents were still in the pipeline, and how long until none was — the
    uploads' processing may fall behind the requests during a burst (the documents service's `events` process
    runs at a lower priority), never lose one."""

    def counts() -> dict[str, int]:
        total: dict[str, int] = {}
        for token in set(tokens):
            r = httpx.get(f"{api}/documents/counts", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            r.raise_for_status()
            for status, n in r.json()["by_status"].items():
                total[status] = total.get(status, 0) + n
        return total

    started = time.monotonic()
    first = now = counts()
    while sum(now[s] for s in IN_PIPELINE) and time.monotonic() - started < limit_s:
        time.sleep(1.0)
        now = counts()
    return {
        "at_end": sum(first[s] for s in IN_PIPELINE),
        "left": sum(now[s] for s in IN_PIPELINE),
        "drained_s": time.monotonic() - started,
        "final": now,
    }


def cpu_seconds(root: int) -> dict[int, tuple[str, float]]:
    """pid → (process, user+system CPU seconds so far) for `atrium up` and everything under it: each
    service and the gateway (by ATRIUM_PROCESS), PostgreSQL's backends, nats-server, Prometheus. A process
    counts the children it has reaped too (a PostgreSQL backend that ended, an extraction pool child
    replaced): without them, work done by processes that came and went during the run was not counted."""
    out: dict[int, tuple[str, float]] = {}
    top = psutil.Process(root)
    for p in [top, *top.children(recursive=True)]:
        try:
            with p.oneshot():
                t = p.cpu_times()
                # The processes of one service together (`docs-1`, `docs-2`: infra/catalog.py's replicas).
                label = re.sub(r"-\d+$", "", p.environ().get("ATRIUM_PROCESS") or p.name())
            cpu = t.user + t.system + t.children_user + t.children_system
            out[p.pid] = ("atrium up" if p.pid == root else label, cpu)
        except psutil.Error:
            continue
    return out


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per process between two snapshots (a process started meanwhile counts from zero)."""
    used: dict[str, float] = {}
    for pid, (label, cpu) in after.items():
        used[label] = used.get(label, 0.0) + cpu - before.get(pid, (label, 0.0))[1]
    return used


def by_label(prometheus: str, query: str, label: str | tuple[str, ...]) -> dict[str, float]:
    """The query's value per series, keyed by `label` (several labels joined with a space)."""
    if not prometheus:
        return {}
    labels = (label,) if isinstance(label, str) else label
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    return {
        " ".join(s["metric"].get(name, "?") for name in labels): float(s["value"][1])
        for s in r["data"]["result"]
    }


def cpu_by_process(prometheus: str) -> dict[str, float]:
    """CPU cores each process used over the last minute."""
    q = 'sum by (process) (rate(process_cpu_seconds_total{job="atrium"}[1m]))'
    return by_label(prometheus, q, "process")


def busy_by_subject(prometheus: str) -> dict[str, float]:
    """Seconds of handler time per second for each bus subject over the last minute: the subjects of one
    service share its ATRIUM_CONCURRENCY slots (8), so their sum near 8 means that service is saturated."""
    q = "sum by (subject) (rate(atrium_rpc_duration_seconds_sum[1m]))"
    return by_label(prometheus, q, "subject")


def p95_inside(prometheus: str) -> dict[str, dict[str, float]]:
    """p95 over the last minute of the time spent inside the stack: the gateway's by method and route
    (request in to response out), the services' handlers by subject and how long a request waited before its
    handler took it — against the load generator's own p95, where the rest of a request's time went — and what stopped
    whole processes: each one's event-loop lag and garbage-collector pauses (its slowest generation)."""
    out = {}
    for kind, metric, labels in (
        ("gateway", "atrium_http_request_duration_seconds", ("method", "route")),
        ("handler", "atrium_rpc_duration_seconds", ("subject",)),
        ("queued", "atrium_rpc_queue_seconds", ("subject",)),
        ("loop lag", "atrium_event_loop_lag_seconds", ("process",)),
        ("collector pause", "atrium_gc_pause_seconds", ("process", "generation")),
    ):
        q = f"histogram_quantile(0.95, sum by (le, {', '.join(labels)}) (rate({metric}_bucket[1m])))"
        out[kind] = {k: v for k, v in by_label(prometheus, q, labels).items() if not math.isnan(v)}
    return out


def cost_per_kind(
    base: str, tokens: list[str], root: int, n: int, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """CPU milliseconds per request of each kind, one request at a time (`n` of each) against the stack,
    per process (from /proc), less what the idle stack uses in as long: the cost, whatever the machine's
    load. An upload's row includes its pipeline (extraction, previews, events) up to 5 s after the last."""
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    ids: list[str] = []

    def kinds(client: httpx.Client) -> dict[str, Any]:
        def listing() -> None:
            r = client.get("/documents", params={"limit": 50}, headers=headers)
            r.raise_for_status()
            ids[:] = [d["id"] for d in r.json()["items"]]

        def upload() -> None:
            body = PDF.read_bytes() + f"\n% cost {time.monotonic_ns()}\n".encode()
            files = {"file": ("cost.pdf", body, "application/pdf")}
            client.post("/documents", files=files, headers=headers).raise_for_status()

        return {
            "sign in": lambda: client.post(
                "/auth/login", json={"email": "load-0@example.com", "password": PASSWORD}
            ).raise_for_status(),
            "list": listing,
            "search": lambda: client.get(
                "/documents", params={"q": "invoice", "limit": 20}, headers=headers
            ).raise_for_status(),
            "open a document": lambda: client.get(f"/documents/{ids[0]}", headers=headers).raise_for_status(),
            "me": lambda: client.get("/auth/me", headers=headers).raise_for_status(),
            "upload a small PDF": upload,
        }

    def measure(what: Any, settle_s: float = 0.0) -> tuple[float, dict[str, float]]:
        t0, before = time.monotonic(), cpu_seconds(root)
        for _ in range(n):
            what()
        time.sleep(settle_s)
        return time.monotonic() - t0, cpu_used(before, cpu_seconds(root))

    rows = []
    with httpx.Client(base_url=base, timeout=60) as client:
        idle_s, idle = measure(lambda: time.sleep(0.05))
        for kind, what in kinds(client).items():
            if only is not None and kind not in only and kind != "list":  # list: the ids to open
                continue
            client.cookies.clear()
            wall, used = measure(what, settle_s=5.0 if kind.startswith("upload") else 0.0)
            net = {p: max(0.0, c - idle.get(p, 0.0) * wall / idle_s) for p, c in used.items()}
            rows.append({"kind": kind, "wall_ms": wall / n * 1000, "cpu": net, "n": n})
    return rows


def cost_report(rows: list[dict[str, Any]], load: tuple[float, float, float]) -> str:
    shown = ["docs", "gateway", "postgres", "nats-server", "auth", "extract", "ai"]
    lines = [
        "## Load: CPU cost per request kind (`python -m bench.bench_load --cost N`)",
        "",
        "The same stack and accounts; each kind sent one at a time, N times, and the CPU every process of the "
        "stack used meanwhile (/proc) less what the idle stack uses in as long, per request: the cost, which "
        "the machine's load does not change much (the wall time per request it does). An upload includes "
        f"its pipeline. Load average (1/5/15 min) at the start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        "",
        "| request | N | CPU ms total | " + " | ".join(shown) + " | other | wall ms (one at a time) |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in shown) + " | ---: | ---: |",
    ]
    for r in rows:
        cpu = {p: c / r["n"] * 1000 for p, c in r["cpu"].items()}
        other = sum(c for p, c in cpu.items() if p not in shown)
        lines.append(
            f"| {r['kind']} | {r['n']} | {sum(cpu.values()):.1f} | "
            + " | ".join(f"{cpu.get(p, 0.0):.1f}" for p in shown)
            + f" | {other:.1f} | {r['wall_ms']:.0f} |"
        )
    return "\n".join(lines)


def run_cost(accounts: int, n: int) -> str:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-load-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        proc, _ = start_stack(data, port, Path(tmp) / "up.log")
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            tokens = seed(base, accounts)
            time.sleep(15)
            load = os.getloadavg()
            return cost_report(cost_per_kind(base, tokens, proc.pid, n), load)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(
    users: int, seconds: int, accounts: int, signed_in: bool, spawn_rate: float = 20
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="atrium-bench-load-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        proc, prometheus = start_stack(data, port, Path(tmp) / "up.log")
        try:
            base = f"http://127.0.0.1:{port}"
            tokens = seed(f"{base}/api/v1", accounts)
            (Path(tmp) / "tokens").write_text("\n".join(tokens))
            time.sleep(15)  # let the seeded documents through the pipeline before measuring
            load_before = os.getloadavg()
            cpu_before, machine_before = cpu_seconds(proc.pid), psutil.cpu_times()
            env = {
                **os.environ,
                "ATRIUM_LOAD_ACCOUNTS": str(accounts),
                "ATRIUM_LOAD_PASSWORD": PASSWORD,
                "ATRIUM_LOAD_PDF": str(PDF),
                **({"ATRIUM_LOAD_TOKENS": str(Path(tmp) / "tokens")} if signed_in else {}),
            }
            locust = Path(sys.executable).parent / "locust"
            t0, gen_cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            gen = subprocess.run(
                [
                    str(locust),
                    "-f",
                    str(ROOT / "bench" / "locustfile.py"),
                    "--headless",
                    "-u",
                    str(users),
                    "-r",
                    str(spawn_rate),
                    "-t",
                    f"{seconds}s",
                    "--host",
                    base,
                    "--csv",
                    str(Path(tmp) / "load"),
                    "--only-summary",
                    "--stop-timeout",
                    "5",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            elapsed = time.monotonic() - t0
            cpu_run = cpu_used(cpu_before, cpu_seconds(proc.pid))
            drain = pipeline_drain(f"{base}/api/v1", tokens)
            machine_after = psutil.cpu_times()
            machine = {
                "cpu_run": cpu_run,
                # Every process of the machine, the stack's and anything else's (idle and I/O wait excluded).
                "machine_busy_s": sum(machine_after)
                - sum(machine_before)
                - (machine_after.idle - machine_before.idle)
                - (machine_after.iowait - machine_before.iowait),
                "locust_cpu": sum(
                    getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f) - getattr(gen_cpu, f)
                    for f in ("ru_utime", "ru_stime")
                ),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "cpu": cpu_by_process(prometheus),
                "busy": busy_by_subject(prometheus),
                "p95_inside": p95_inside(prometheus) if prometheus else {},
                "elapsed_s": elapsed,
                "locust_rc": gen.returncode,
                "drain": drain,
            }
            with open(Path(tmp) / "load_stats.csv") as f:
                rows = list(csv.DictReader(f))
            with open(Path(tmp) / "load_failures.csv") as f:
                machine["failures"] = [
                    (r["Name"], r["Error"][:120], int(r["Occurrences"])) for r in csv.DictReader(f)
                ]
            return rows, machine
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def report(
    rows: list[dict[str, Any]],
    machine: dict[str, Any],
    users: int,
    seconds: int,
    accounts: int,
    signed_in: bool,
    spawn_rate: float = 20,
) -> str:
    lb, la = machine["load_before"], machine["load_after"]
    who = (
        "each reusing one of the accounts' tokens (no sign-in)"
        if signed_in
        else "each signing in once and then"
    )
    lines = [
        f"## Load: {users} users for {seconds} s against `atrium up` (locust"
        + (", signed in beforehand: `--signed-in`)" if signed_in else ")"),
        "",
        f"`python -m bench.bench_load` — `atrium up` (every service and the gateway its own process), "
        f"{accounts} accounts with 3 documents each; `bench/locustfile.py` in its own process: {users} users "
        f"spawned at {spawn_rate:g}/s, {who} waiting 1–3 s between list, search, opening a "
        "document, `me`, uploading a small PDF and connecting to the live event stream"
        + (
            ""
            if signed_in
            else " (a user told to come back — 503 with Retry-After — waits and signs in again, "
            "counted on the row “sign in: told to retry”, not as an error; after a 401 a user signs in again)"
        )
        + ". "
        f"Load average (1/5/15 min) before: {lb[0]:.1f} / {lb[1]:.1f} / {lb[2]:.1f}, after: "
        f"{la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (2 cores, shared with other work).",
        "",
        "| request | count | errors | p50 ms | p95 ms | p99 ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['Name']} | {r['Request Count']} | {r['Failure Count']} | {r['50%']} | {r['95%']} | "
            f"{r['99%']} | {float(r['Requests/s']):.1f} |"
        )
    if machine["cpu"]:
        cpu = ", ".join(f"{p} {c:.2f}" for p, c in sorted(machine["cpu"].items(), key=lambda x: -x[1]))
        lines += ["", f"CPU cores used per process over the run's last minute (Prometheus): {cpu}."]
    if machine["busy"]:
        top = sorted(machine["busy"].items(), key=lambda x: -x[1])[:6]
        busy = ", ".join(f"{s} {b:.2f}" for s, b in top)
        lines += [f"Handler seconds per second by bus subject (same minute): {busy}."]
    inside = machine.get("p95_inside") or {}
    for kind, what in (
        ("gateway", "the gateway by method and route"),
        ("handler", "the handlers by subject"),
        ("queued", "the wait before a handler took its request, by subject"),
        ("loop lag", "each process's event-loop lag"),
        ("collector pause", "each process's garbage-collector pauses by generation"),
    ):
        slowest = sorted(inside.get(kind, {}).items(), key=lambda x: -x[1])[:6]
        if slowest:
            listed = ", ".join(f"{k} {v * 1000:.0f}" for k, v in slowest)
            lines += [f"p95 ms inside the stack, {what} (same minute): {listed}."]
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if machine.get("cpu_run") and total and int(total["Request Count"]):
        used = machine["cpu_run"]
        spent = sum(used.values())
        per_request = spent / int(total["Request Count"])
        top_cpu = ", ".join(
            f"{p} {c:.1f}" for p, c in sorted(used.items(), key=lambda x: -x[1])[:9] if c >= 0.05
        )
        lines += [
            f"CPU seconds the stack used during the run (/proc, load-independent cost): {spent:.0f} over "
            f"{machine['elapsed_s']:.0f} s — {top_cpu} (locust, the load generator: "
            f"{machine['locust_cpu']:.0f}). That is {per_request * 1000:.0f} ms of CPU per request "
            f"({int(total['Request Count'])} requests).",
        ]
        drain = machine.get("drain")
        if drain:
            final = ", ".join(f"{k} {v}" for k, v in sorted(drain["final"].items()) if v)
            lines += [
                f"The pipeline after the load: {drain['at_end']} uploaded documents still in it when the users "
                f"stopped, {drain['left']} after {drain['drained_s']:.0f} s (every document then: {final})."
            ]
        if machine.get("machine_busy_s"):
            cores = psutil.cpu_count() or 1
            lines += [
                f"The machine's CPU was busy {machine['machine_busy_s']:.0f} s of {cores} × "
                f"{machine['elapsed_s']:.0f} s ({machine['machine_busy_s'] / machine['elapsed_s']:.2f} of "
                f"{cores} cores; /proc/stat, every process).",
            ]
    failures = sorted(machine.get("failures", []), key=lambda f: -f[2])[:6]
    if failures:
        lines += [
            "",
            "Failures (most frequent): " + "; ".join(f"{n}: {e} ×{c}" for n, e, c in failures) + ".",
        ]
    reads = [r for r in rows if r["Name"] in READS]
    errors = sum(int(r["Failure Count"]) for r in rows if r["Name"] != "Aggregated")
    worst = max((float(r["95%"]) for r in reads), default=float("nan"))
    lines += [
        "",
        f"Errors: {errors}. Worst read p95: {worst:.0f} ms — goal (0 errors, every read p95 < 500 ms) "
        + ("met." if errors == 0 and worst < 500 else "NOT met."),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=20, help="users started per second")
    parser.add_argument("--section", help="the RESULTS.md section to write (default: by users and sign-in)")
    parser.add_argument("--print-only", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument(
        "--signed-in",
        action="store_true",
        help="users reuse tokens made beforehand (the reads without sign-in)",
    )
    parser.add_argument(
        "--cost",
        type=int,
        metavar="N",
        help="instead: CPU per request kind, N requests of each, one at a time",
    )
    args = parser.parse_args()
    if args.cost:
        publish(args.section or "load-cost", run_cost(args.accounts, args.cost), write=not args.print_only)
        return
    rows, machine = run(args.users, args.seconds, args.accounts, args.signed_in, args.spawn_rate)
    body = report(rows, machine, args.users, args.seconds, args.accounts, args.signed_in, args.spawn_rate)
    # The 200 users keep their sections; other counts (how many users this machine carries) get their own.
    section = "load-signed-in" if args.signed_in else "load"
    if args.users != 200:
        section += f"-{args.users}-users"
    publish(args.section or section, body, write=not args.print_only)


if __name__ == "__main__":
    main()
