"""The hot path: an authenticated `GET /auth/me` through Atrium against the designs it replaces, in one run.

Four designs, all doing the same work — verify the RS256 access token, read the user's row from the
auth service's `users` table in the same PostgreSQL, answer `UserPublic` as JSON:

- `atrium`: HTTP to the gateway, which sends the Rpc over NATS to the auth service (as `atrium up` runs them);
- `bus`: the same Rpc sent straight on NATS (no gateway), as a service or the CLI calls it;
- `monolith`: one FastAPI process doing the work itself (bench/hotpath_apps.py);
- `httpx proxy`: the seed's design, a FastAPI proxy forwarding with httpx to a FastAPI service (the monolith).

Every HTTP server is uvicorn with one worker, uvloop and httptools. The load comes from another process
(bench/loadgen.py: bare keep-alive HTTP/1.1 or one NATS connection), the same for every design. The
designs take turns, in a rotated order, for several rounds, so a change in the machine's load hits them
alike; each cell reports requests per second, median and p95 latency, and the CPU each process spent per
request while it was measured. Ratios are taken per round against the monolith (and the proxy) of the
same round and summarised by their median.

    python -m bench.bench_hotpath [--rounds 5] [--seconds 5] [--clients 1,32] [--code DIR] [--no-write]

`--code DIR` runs the gateway and the auth service from another checkout (e.g. a worktree of an older
commit) against the same baselines, to compare versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.results import ROOT, publish, summary
from bench.stack import PASSWORD, BenchStack
from contracts.auth import LOGIN, ME, REGISTER
from infra.embedded import free_port
from infra.nats.accounts import OPERATOR
from services.kit.client import call
from services.kit.config import nats_login

DESIGNS = ("atrium", "bus", "monolith", "httpx proxy")
LABELS = {
    "atrium": "atrium: gateway → NATS → auth",
    "bus": "bus: NATS → auth (no gateway)",
    "monolith": "monolith: one FastAPI process",
    "httpx proxy": "httpx proxy → FastAPI service",
}


@dataclass
class Cell:
    design: str
    clients: int
    rps: list[float] = field(default_factory=list)  # one per round
    latencies: list[float] = field(default_factory=list)  # pooled over the rounds
    errors: int = 0
    requests: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds while measured


class Processes:
    """CPU seconds (user + system) of the processes taking part, PostgreSQL's backends included."""

    def __init__(self, roots: dict[str, int]):
        self.roots = {name: psutil.Process(pid) for name, pid in roots.items()}

    def sample(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, proc in self.roots.items():
            out[name] = {}
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    out[name][p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        return out

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds between two samples; a process that ended in between is not counted."""
        return {
            name: sum(t - before[name].get(pid, 0.0) for pid, t in pids.items())
            for name, pids in after.items()
        }


async def wait_ok(url: str, token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 in {timeout:g} s (last: {last})")


def spawn_app(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.hotpath_apps", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_load(
    target: str, clients: int, seconds: float, tokens: Path, env: dict[str, str], procs: Processes
) -> tuple[dict[str, Any], dict[str, float]]:
    """One cell: the load generator in its own process; CPU of every process over the measured window."""
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--target",
        target,
        "--subject",
        ME.subject,
        "--tokens",
        str(tokens),
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
    ]
    gen = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert gen.stdout is not None
    first = json.loads(gen.stdout.readline())  # {"measuring": true}: the warm-up is over
    assert first.get("measuring"), first
    before = procs.sample()
    result = json.loads(gen.stdout.readline())
    after = procs.sample()
    gen.wait()
    cpu = procs.spent(before, after)
    cpu["client"] = result["cpu_s"]
    return result, cpu


async def prepare(stack: BenchStack, work: Path) -> tuple[Path, str]:
    """32+ users with an access token each; returns the tokens file and one token."""
    nc = await stack.connect()
    users = [f"hot-{i}-{os.urandom(3).hex()}@example.com" for i in range(64)]
    tokens = []
    for e in users:  # one at a time: each is an argon2 hash, and a queue of 64 would time out
        await call(nc, REGISTER, {"email": e, "password": PASSWORD})
        tokens.append((await call(nc, LOGIN, {"email": e, "password": PASSWORD})).access_token)
    await nc.close()
    path = work / "tokens.json"
    path.write_text(json.dumps(tokens))
    return path, tokens[0]


async def run(
    rounds: int, seconds: float, concurrency: tuple[int, ...], code: Path
) -> tuple[list[Cell], list[tuple[float, float, float]]]:
    data = Path(tempfile.mkdtemp(prefix="atrium-bench-hotpath-"))
    stack = BenchStack(
        data,
        ("auth",),
        env={"ATRIUM_ACCESS_TTL_S": "7200", "ATRIUM_AUTH_RATE_EXEMPT_IPS": "127.0.0.1,bus"},
        code=code,
    )
    apps: dict[str, subprocess.Popen[bytes]] = {}
    loads: list[tuple[float, float, float]] = []
    try:
        await stack.start()
        tokens, token = await prepare(stack, data)
        mono_port, proxy_port = free_port(), free_port()
        logs = data / "logs"
        apps["monolith"] = spawn_app(
            ["monolith", "--port", str(mono_port)],
            {"DATABASE_URL": stack.db_urls["auth"], "ATRIUM_KEY_DIR": str(data / "keys" / "auth")},
            logs / "monolith.log",
        )
        apps["httpx proxy"] = spawn_app(
            ["proxy", "--port", str(proxy_port), "--backend", f"http://127.0.0.1:{mono_port}"],
            {},
            logs / "proxy.log",
        )
        path = "/api/v1/auth/me"
        targets = {
            "atrium": f"http://127.0.0.1:{stack.port}{path}",
            "bus": stack.nats.url,
            "monolith": f"http://127.0.0.1:{mono_port}{path}",
            "httpx proxy": f"http://127.0.0.1:{proxy_port}{path}",
        }
        for design in ("atrium", "monolith", "httpx proxy"):
            await wait_ok(targets[design], token)
        operator = nats_login(OPERATOR, data)
        bus_env = {"NATS_USER": operator.user, "NATS_PASSWORD": operator.password}
        assert stack.nats.proc and stack.pg.proc
        procs = Processes(
            {
                "gateway": stack.procs["gateway"].pid,
                "auth": stack.procs["auth"].pid,
                "nats": stack.nats.proc.pid,
                "postgres": stack.pg.proc.pid,
                "monolith": apps["monolith"].pid,
                "proxy": apps["httpx proxy"].pid,
            }
        )
        cells = {(d, c): Cell(d, c) for d in DESIGNS for c in concurrency}
        for r in range(rounds):
            loads.append(os.getloadavg())
            order = DESIGNS[r % len(DESIGNS) :] + DESIGNS[: r % len(DESIGNS)]
            for clients in concurrency:
                for design in order:
                    result, cpu = run_load(
                        targets[design],
                        clients,
                        seconds,
                        tokens,
                        bus_env if design == "bus" else {},
                        procs,
                    )
                    cell = cells[(design, clients)]
                    cell.rps.append(result["requests"] / result["elapsed"])
                    cell.latencies.extend(result["latencies"])
                    cell.errors += result["errors"]
                    cell.requests += result["requests"]
                    for name, s in cpu.items():
                        cell.cpu_s[name] = cell.cpu_s.get(name, 0.0) + s
                    print(
                        f"round {r + 1} {design:12} c={clients:<3} {cell.rps[-1]:8.1f} req/s  "
                        f"median {statistics.median(result['latencies'] or [0]):6.2f} ms  "
                        f"errors {result['errors']}  load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
        loads.append(os.getloadavg())
        return list(cells.values()), loads
    finally:
        for p in apps.values():
            p.terminate()
        for p in apps.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        stack.stop()


# Processes whose CPU counts as the design's server side (the client and NATS/PostgreSQL shown apart).
SERVER_SIDE = {
    "atrium": ("gateway", "auth"),
    "bus": ("auth",),
    "monolith": ("monolith",),
    "httpx proxy": ("proxy", "monolith"),
}


def ratios(cells: list[Cell], design: str, base: str, clients: int) -> float:
    by = {(c.design, c.clients): c for c in cells}
    mine, ref = by[(design, clients)].rps, by[(base, clients)].rps
    return statistics.median(a / b for a, b in zip(mine, ref, strict=True))


GOALS = [
    # (design, baseline, clients, at least, wording)
    ("atrium", "monolith", 1, 0.7, "atrium ≥ 0.7× the monolith with 1 client"),
    ("atrium", "monolith", 32, 0.9, "atrium ≥ 0.9× the monolith with 32 clients"),
    ("atrium", "httpx proxy", 1, 1.0, "atrium faster than the httpx proxy with 1 client"),
    ("atrium", "httpx proxy", 32, 1.5, "atrium ≥ 1.5× the httpx proxy with 32 clients"),
    ("bus", "monolith", 32, 1.0, "bus (no gateway) ≥ the monolith with 32 clients"),
]


def report(
    cells: list[Cell],
    loads: list[tuple[float, float, float]],
    rounds: int,
    seconds: float,
    code: Path,
) -> str:
    concurrency = sorted({c.clients for c in cells})
    version = "" if code == ROOT else f" Gateway and auth service from `{code}`."
    lines = [
        "## Hot path: authenticated GET /auth/me — Atrium against a monolith and an httpx proxy",
        "",
        "`python -m bench.bench_hotpath` — own stack (embedded NATS + PostgreSQL, the auth service and the "
        "gateway as separate processes, as `atrium up` runs them) and, beside it, the two baselines of "
        "`bench/hotpath_apps.py` reading the same `auth.users` table: a one-process FastAPI monolith and the "
        "seed's design (a FastAPI proxy forwarding with httpx to a FastAPI service — the monolith). Every "
        "design verifies the RS256 token, reads the user's row and answers JSON; every HTTP server is "
        "uvicorn with one worker, uvloop and httptools; logs at WARNING. The load generator "
        "(`bench/loadgen.py`: keep-alive HTTP/1.1 on bare asyncio, or one NATS connection) is its own "
        f"process. {rounds} rounds, designs in rotated order, {seconds:g} s per cell after a 1 s warm-up. "
        "req/s is the mean over rounds (lowest–highest in brackets); latencies are pooled over rounds; "
        "ratios are per round against the baseline of the same round, median over rounds; CPU is "
        "milliseconds of CPU per request while measured (server side = gateway + auth, auth, monolith, "
        f"proxy + monolith).{version}",
        "",
        f"Machine: 2 cores shared with other work; load average (1 min) at the start of each round: "
        f"{', '.join(f'{lo[0]:.2f}' for lo in loads[:-1])}; at the end: {loads[-1][0]:.2f}.",
        "",
        "| design | clients | req/s | median ms | p95 ms | × monolith | × httpx proxy "
        "| CPU ms/req: server side | NATS | Postgres | client | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients in concurrency:
        for design in DESIGNS:
            c = next(x for x in cells if x.design == design and x.clients == clients)
            s = summary(c.latencies)
            n = max(c.requests, 1)

            def ms(*names: str, c: Cell = c, n: int = n) -> str:
                return f"{sum(c.cpu_s.get(x, 0.0) for x in names) * 1000 / n:.2f}"

            lines.append(
                f"| {LABELS[design]} | {clients} | {statistics.mean(c.rps):.0f} "
                f"({min(c.rps):.0f}–{max(c.rps):.0f}) | {s['median']:.2f} | {s['p95']:.2f} | "
                f"{ratios(cells, design, 'monolith', clients):.2f} | "
                f"{ratios(cells, design, 'httpx proxy', clients):.2f} | {ms(*SERVER_SIDE[design])} | "
                f"{ms('nats')} | {ms('postgres')} | {ms('client')} | {c.errors} |"
            )
    lines += ["", "Goals (issue 11):", ""]
    for design, base, clients, least, wording in GOALS:
        if clients not in concurrency:
            continue
        got = ratios(cells, design, base, clients)
        verdict = "met" if got >= least else f"missed by {least - got:.2f}"
        lines.append(f"- {wording}: {got:.2f}× — {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_hotpath")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per cell")
    parser.add_argument("--clients", default="1,32", help="comma-separated client counts")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout to run gateway and auth from")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--json", type=Path, help="also write the raw cells here")
    args = parser.parse_args()
    concurrency = tuple(int(x) for x in args.clients.split(","))
    cells, loads = asyncio.run(run(args.rounds, args.seconds, concurrency, args.code.resolve()))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {**c.__dict__, "latencies": summary(c.latencies), "mean_rps": statistics.mean(c.rps)}
                    for c in cells
                ]
            )
        )
    publish(
        "hotpath",
        report(cells, loads, args.rounds, args.seconds, args.code.resolve()),
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
