"""Auth through the gateway against the same calls straight on the bus, in one run.

Starts its own stack under a temporary directory: embedded NATS and PostgreSQL, the auth service
and the gateway each as their own process (as `atrium up` runs them). For login, refresh and an
authenticated `GET /api/v1/auth/me`, at 1 and 32 concurrent clients, it measures median and p95
latency and requests per second over a fixed time window, through HTTP and directly on the bus
(`services.kit.client.call`, no gateway), and writes its section of bench/RESULTS.md.

    python -m bench.bench_auth [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.results import publish, summary
from bench.stack import PASSWORD, BenchStack
from contracts import Empty
from contracts.auth import LOGIN, ME, REFRESH, REGISTER
from services.kit.client import call

CONCURRENCY = (1, 32)


Op = Callable[[int], Awaitable[None]]  # one request by client number i


async def measure(op: Op, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    for i in range(clients):  # warm-up: connections, caches
        await op(i)
    stop_at = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                await op(i)
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {**summary(latencies), "rps": len(latencies) / elapsed, "errors": float(errors)}


async def run(seconds: float) -> list[dict[str, Any]]:
    data = Path(tempfile.mkdtemp(prefix="atrium-bench-auth-"))
    # Every client of the bench is 127.0.0.1 and each refreshes hundreds of times a minute:
    # measure the work, not the limiter's refusals.
    stack = BenchStack(
        data,
        ("auth",),
        env={
            "ATRIUM_AUTH_RATE_EXEMPT_IPS": "127.0.0.1,bus",
            "ATRIUM_AUTH_RATE_LIMITS": "refresh_account=1000000/60",
        },
    )
    rows: list[dict[str, Any]] = []
    try:
        await stack.start()
        nc = await stack.connect()
        http = httpx.AsyncClient(
            base_url=stack.base_url,
            timeout=30,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        users = [f"bench-{i}-{os.urandom(3).hex()}@example.com" for i in range(max(CONCURRENCY))]
        await asyncio.gather(*(call(nc, REGISTER, {"email": e, "password": PASSWORD}) for e in users))
        # Per client: its own refresh chain (rotated by every refresh) and an access token.
        pairs = [await call(nc, LOGIN, {"email": e, "password": PASSWORD}) for e in users]
        refresh_tokens = [p.refresh_token for p in pairs]
        access = [p.access_token for p in pairs]

        async def http_login(i: int) -> None:
            r = await http.post("/auth/login", json={"email": users[i], "password": PASSWORD})
            r.raise_for_status()

        async def bus_login(i: int) -> None:
            await call(nc, LOGIN, {"email": users[i], "password": PASSWORD})

        async def http_refresh(i: int) -> None:
            r = await http.post("/auth/refresh", json={"refresh_token": refresh_tokens[i]})
            r.raise_for_status()
            refresh_tokens[i] = r.json()["refresh_token"]

        async def bus_refresh(i: int) -> None:
            refresh_tokens[i] = (await call(nc, REFRESH, {"refresh_token": refresh_tokens[i]})).refresh_token

        async def http_me(i: int) -> None:
            (await http.get("/auth/me", headers={"Authorization": f"Bearer {access[i]}"})).raise_for_status()

        async def bus_me(i: int) -> None:
            await call(nc, ME, Empty(), token=access[i])

        ops = [
            ("login", http_login, bus_login),
            ("refresh", http_refresh, bus_refresh),
            ("me", http_me, bus_me),
        ]
        for name, via_http, via_bus in ops:
            for clients in CONCURRENCY:
                for path, op in (("gateway (HTTP)", via_http), ("bus (baseline)", via_bus)):
                    http.cookies.clear()
                    result = await measure(op, clients, seconds)
                    rows.append({"op": name, "path": path, "clients": clients, **result})
                    print(
                        f"{name:8} {path:15} c={clients:<3} median {result['median']:7.1f} ms  "
                        f"p95 {result['p95']:7.1f} ms  {result['rps']:7.1f} req/s  errors {int(result['errors'])}",
                        flush=True,
                    )
        await http.aclose()
        await nc.close()
    finally:
        stack.stop()
    return rows


def report(rows: list[dict[str, Any]], seconds: float, load: tuple[float, float, float]) -> str:
    lines = [
        "## Auth: login, refresh, GET /auth/me — gateway vs. bus",
        "",
        f"`python -m bench.bench_auth` — own stack (embedded NATS + PostgreSQL, auth service and gateway as "
        f"separate processes, bench client in a third), {seconds:g} s per cell after a warm-up. `gateway` is "
        "HTTP through FastAPI to the auth service over NATS; `bus` is the same Rpc sent straight on NATS "
        "(the baseline). Login is dominated by argon2id (19 MiB, t=2), which is deliberately slow; refresh "
        "by its Postgres transaction and the RSA-4096 signature (about 5 ms on an idle core). "
        f"Load average when the run started: {load[0]:.1f} (the machine is shared; compare rows of one run).",
        "",
        "| operation | path | clients | median ms | p95 ms | req/s | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['path']} | {r['clients']} | {r['median']:.1f} | {r['p95']:.1f} | "
            f"{r['rps']:.1f} | {int(r['errors'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_auth")
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per cell")
    args = parser.parse_args()
    load = os.getloadavg()
    rows = asyncio.run(run(args.seconds))
    publish("auth", report(rows, args.seconds, load))
    print("wrote the auth section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
