"""CPU of an upload and its pipeline, two source trees side by side (issue 16; RESULTS section load-cost-upload).

Starts `atrium up` of this checkout and of `--before` (another source tree of the repo, e.g.
`git archive main | tar -x -C /tmp/before` with `.venv` linked and `../shared` reachable) at once, one account
each, and uploads a small PDF `--per` times to one stack, then to the other, `--rounds` times; after each block
the pipeline gets 4 s to finish. Per stack: CPU every process used (/proc) less what it used idle in an equal
window measured beside each block, per upload. Both stacks see the same machine load at the same moments.

    python -m bench.bench_upload_cost --before /tmp/before [--rounds 8] [--per 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_load import PASSWORD, PDF, cpu_seconds, cpu_used, seed
from bench.results import ROOT
from infra.embedded import free_port

SETTLE_S = 4.0


def start(root: Path, data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
        "PYTHONPATH": str(root),
        "LOG_LEVEL": "WARNING",
        "ATRIUM_AUTH_RATE_EXEMPT_IPS": "127.0.0.1",
        "ATRIUM_SIGNIN_REQUIRES_VERIFIED_EMAIL": "0",
    }
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "infra.cli",
        "up",
        "--port",
        str(port),
        "--data",
        str(data),
        "--no-web-build",
    ]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 300
    while "Atrium is running at" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"atrium up of {root} did not come up; see {log}")
        time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}/api/v1"


def upload(client: httpx.Client, token: str) -> None:
    body = PDF.read_bytes() + f"\n% cost {time.monotonic_ns()}\n".encode()
    files = {"file": ("cost.pdf", body, "application/pdf")}
    client.post("/documents", files=files, headers={"Authorization": f"Bearer {token}"}).raise_for_status()


def side_by_side(stacks: dict[str, tuple[int, str]], rounds: int, per: int) -> dict[str, dict[str, Any]]:
    clients = {name: httpx.Client(base_url=base, timeout=60) for name, (_, base) in stacks.items()}
    out: dict[str, dict[str, Any]] = {
        n: {"busy": {}, "idle": {}, "busy_s": 0.0, "idle_s": 0.0} for n in stacks
    }
    for _ in range(rounds):
        for name, (pid, _) in stacks.items():
            c = clients[name]
            r = c.post("/auth/login", json={"email": "load-0@example.com", "password": PASSWORD})
            r.raise_for_status()
            token = r.json()["access_token"]
            c.cookies.clear()
            for kind, what in (
                ("idle", lambda: time.sleep(SETTLE_S)),
                ("busy", lambda: ([upload(c, token) for _ in range(per)], time.sleep(SETTLE_S))),  # noqa: B023
            ):
                t0, before = time.monotonic(), cpu_seconds(pid)
                what()
                out[name][f"{kind}_s"] += time.monotonic() - t0
                for label, cpu in cpu_used(before, cpu_seconds(pid)).items():
                    out[name][kind][label] = out[name][kind].get(label, 0.0) + cpu
    n = rounds * per
    for r in out.values():
        scale = r["busy_s"] / r["idle_s"]
        r["per_upload_ms"] = {
            label: max(0.0, cpu - r["idle"].get(label, 0.0) * scale) / n * 1000
            for label, cpu in r["busy"].items()
        }
        r["idle_ms_per_s"] = {label: cpu / r["idle_s"] * 1000 for label, cpu in r["idle"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other source tree (the baseline)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atrium-upload-cost-") as tmp:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        stacks: dict[str, tuple[int, str]] = {}
        try:
            for name, root in (("before", args.before.resolve()), ("after", ROOT)):
                proc, base = start(root, Path(tmp) / name, Path(tmp) / f"{name}.log")
                procs[name] = proc
                seed(base, 1)
                stacks[name] = (proc.pid, base)
            time.sleep(10)
            load = os.getloadavg()
            result = side_by_side(stacks, args.rounds, args.per)
            print(f"load average at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f}")
            for name, r in result.items():
                cpu = dict(sorted(r["per_upload_ms"].items(), key=lambda kv: -kv[1]))
                print(
                    f"{name}: {sum(cpu.values()):.1f} CPU ms per upload",
                    {k: round(v, 1) for k, v in cpu.items()},
                )
                print(f"{name} idle: {sum(r['idle_ms_per_s'].values()):.1f} CPU ms/s")
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGINT)
            for proc in procs.values():
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
