"""`atrium up`: embedded NATS + PostgreSQL, every service and the gateway as supervised processes.

A crashed process is restarted (with backoff) and logged; Ctrl-C stops everything. Children
get SIGTERM if the devstack itself dies (PR_SET_PDEATHSIG), so nothing is left orphaned.
State lives under `--data` (default `var/`): `nats/`, `pg/`, `secrets/`, `keys/`, `mail/`, `logs/`,
and `stack.json`, which tells the CLI (`atrium bus …`, `atrium admin …`) how to reach the stack.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import NATS_USER as GATEWAY_NATS_USER
from services.kit.config import NATS_SECRETS_FILE

from . import catalog, web
from . import prometheus as prom
from .embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    StackError,
    die_with_parent,
    port_is_free,
    provision,
)
from .secret_files import read_or_create_secret

ROOT = Path(__file__).resolve().parent.parent
# debugpy's usual port: VS Code's "Remote Attach" asks for it by default (ATRIUM_DEBUG_PORT moves it).
DEBUG_PORT = 5678
UP_TIMEOUT_S = 300.0  # how long `atrium up` waits for health (ATRIUM_UP_TIMEOUT)
UP_PROGRESS_EVERY_S = 10.0  # how often it says what it is still waiting for
WEB = web.WEB


def say(msg: str) -> None:
    print(f"atrium: {msg}", flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open by the child)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@dataclass
class ServerWatch:
    """An embedded server (nats-server, PostgreSQL) the supervisor restarts on its port when it dies."""

    name: str
    server: EmbeddedNats | EmbeddedPostgres
    restarts: int = 0
    next_start: float = 0.0

    def check(self, now: float) -> None:
        proc = self.server.proc
        if proc is not None and proc.poll() is None:
            return
        if proc is not None:  # just died: try at once, then back off
            say(f"{self.name} exited with code {proc.returncode}; restarting it on the same port")
            self.server.proc, self.next_start = None, now
        if now < self.next_start:
            return
        self.restarts += 1
        try:
            self.server.start()
        except StackError as exc:
            # e.g. PostgreSQL's old backends still hold its shared memory for a moment after a crash
            self.server.stop()
            self.server.proc = None
            self.next_start = now + min(10.0, float(self.restarts))
            say(f"{self.name} did not start yet ({str(exc).splitlines()[0]}); retrying")
            return
        say(f"{self.name} restarted (restart #{self.restarts})")


@dataclass
class DevStack:
    data_dir: Path
    http_port: int = 8080
    dev: bool = False
    build_web: bool = True
    # Processes started under debugpy (`--debug docs`), each listening on its own port from DEBUG_PORT.
    debug: tuple[str, ...] = ()
    debug_port_of: dict[str, int] = field(default_factory=dict)
    nats: EmbeddedNats | None = None
    pg: EmbeddedPostgres | None = None
    children: list[Child] = field(default_factory=list)
    servers: list[ServerWatch] = field(default_factory=list)
    nats_url: str = ""
    lock_fd: int | None = None
    # The embedded server's NATS users (infra/nats) → passwords; empty with an external NATS_URL.
    nats_passwords: dict[str, str] = field(default_factory=dict)
    prometheus: prom.EmbeddedPrometheus | None = None

    # ---- start-up -------------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "atrium.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = read_stack_info(self.data_dir)
            where = f" at {info['url']}" if info else ""
            raise StackError(
                f"Another Atrium stack is already running with --data {self.data_dir}{where}. "
                "Stop it (Ctrl-C in its terminal) or use another --data directory."
            ) from None
        self.lock_fd = fd

    def prepare(self) -> dict[str, str]:
        self.debug_port_of = self.debug_ports()
        if not port_is_free(self.http_port):
            raise StackError(
                f"Port {self.http_port} is already in use. Stop what uses it, or start Atrium on "
                f"another port: ./atrium up --port {self.http_port + 1}"
            )
        self.acquire_lock()
        secret = os.environ.get("ATRIUM_SECRET") or read_or_create_secret(
            self.data_dir / "secrets" / "platform"
        )
        if os.environ.get("NATS_URL"):
            self.nats_url = os.environ["NATS_URL"]
            say(f"using NATS at {self.nats_url}")
        else:
            t = time.monotonic()
            self.nats = EmbeddedNats(self.data_dir).start()
            self.servers.append(ServerWatch("nats-server", self.nats))
            self.nats_url = self.nats.url
            if self.nats.auth:
                self.nats_passwords = json.loads((self.data_dir / "secrets" / NATS_SECRETS_FILE).read_text())
            say(f"embedded NATS (JetStream) on {self.nats_url} [{time.monotonic() - t:.1f}s]")
        if os.environ.get("DATABASE_URL"):
            admin_url = os.environ["DATABASE_URL"]
            say("using PostgreSQL from DATABASE_URL")
        else:
            t = time.monotonic()
            self.pg = EmbeddedPostgres(self.data_dir).start()
            self.servers.append(ServerWatch("PostgreSQL", self.pg))
            admin_url = self.pg.admin_url
            say(f"embedded PostgreSQL on 127.0.0.1:{self.pg.port} [{time.monotonic() - t:.1f}s]")
        db_urls = asyncio.run(self._provision_and_migrate(admin_url))
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NATS_URL": self.nats_url,
            "ATRIUM_DATA": str(self.data_dir.resolve()),
            "ATRIUM_SECRET": secret,
            "ATRIUM_PUBLIC_URL": os.environ.get("ATRIUM_PUBLIC_URL", f"http://localhost:{self.http_port}"),
            "PYTHONUNBUFFERED": "1",
        }
        for name, url in db_urls.items():
            env[f"ATRIUM_DB_URL_{name.upper()}"] = url
        env.pop("DATABASE_URL", None)  # services get their own role, never the admin URL
        return env

    async def _provision_and_migrate(self, admin_url: str) -> dict[str, str]:
        from services.kit import migrations

        t = time.monotonic()
        urls = await provision(admin_url, self.data_dir)
        for spec in catalog.SERVICES:
            if spec.has_db and migrations.has_migrations(spec.name):
                await migrations.upgrade(spec.name, urls[spec.name], spec.name)
        say(f"schemas, roles and migrations ready [{time.monotonic() - t:.1f}s]")
        return urls

    def build_web_app(self) -> None:
        if not (WEB / "package.json").exists():
            return
        npm = shutil.which("npm")
        if not npm:
            say("npm not found: serving the API only (install Node 20+ to get the web app)")
            return
        try:
            web.build(npm, announce=lambda: say("building the web app (first time takes a minute)…"))
        except subprocess.CalledProcessError as exc:
            # The API is still useful without the web app; say so instead of refusing to start.
            say(
                f"the web app did not build ({' '.join(map(str, exc.cmd[1:]))} exited {exc.returncode}); "
                "serving the API with a placeholder page. Fix web/ and restart."
            )

    def nats_env(self, env: dict[str, str], user: str) -> dict[str, str]:
        """`env` with the process's own NATS user and password (the embedded server's)."""
        if user not in self.nats_passwords:
            return env
        return {**env, "ATRIUM_NATS_USER": user, "ATRIUM_NATS_PASSWORD": self.nats_passwords[user]}

    def spawn_all(self, env: dict[str, str]) -> None:
        logs = self.data_dir / "logs"
        py = sys.executable
        prom.clear_targets(self.data_dir)  # each process registers its metrics port again (kit/metrics.py)
        for spec in catalog.SERVICES:
            for name in spec.process_names:
                argv = [py, *debugpy_argv(self.debug_port_of.get(name)), "-m", spec.module]
                child_env = {
                    **self.nats_env(env, spec.name),
                    "ATRIUM_PROCESS": name,
                    **spec.environment_of(name),
                }
                self.children.append(Child(name, argv, child_env, logs / f"{name}.log"))
        gw_env = {**self.nats_env(env, GATEWAY_NATS_USER), "ATRIUM_PROCESS": "gateway"}
        if self.dev:
            gw_env["ATRIUM_WEB_DIST"] = str(self.data_dir / "no-web")  # Vite serves the app in --dev
        self.children.append(
            Child(
                "gateway",
                [
                    py,
                    *debugpy_argv(self.debug_port_of.get("gateway")),
                    "-m",
                    "gateway",
                    "--port",
                    str(self.http_port),
                ],
                gw_env,
                logs / "gateway.log",
            )
        )
        if self.dev and (WEB / "package.json").exists() and shutil.which("npm"):
            vite_env = {**env, "ATRIUM_GATEWAY_PORT": str(self.http_port), "ATRIUM_PYTHON": sys.executable}
            try:
                web.install(shutil.which("npm") or "npm")
            except subprocess.CalledProcessError as exc:
                say(f"npm install exited {exc.returncode}; Vite may not start")
            self.children.append(
                Child(
                    "vite",
                    [
                        shutil.which("npm") or "npm",
                        "run",
                        "dev",
                        "--",
                        "--port",
                        str(self.http_port + 1),
                        "--strictPort",
                    ],
                    vite_env,
                    logs / "vite.log",
                    cwd=WEB,
                )
            )
        for c in self.children:
            c.start()

    def start_prometheus(self) -> str:
        """Prometheus over every process's metrics, if Debian's package is installed; else say how to get it
        (the processes serve their metrics either way)."""
        if not prom.binary():
            return (
                "prometheus not found: every process still serves its metrics (targets in "
                f"{self.data_dir / 'metrics' / 'targets'}); for dashboards and alerts install it: "
                f"{prom.INSTALL_HINT}"
            )
        try:
            self.prometheus = prom.EmbeddedPrometheus(self.data_dir, port=self.http_port + 2).start()
        except StackError as exc:
            return f"Prometheus did not start ({exc}); metrics are still served by every process"
        return f"Prometheus on {self.prometheus.url} (alert rules: infra/prometheus/alerts.yml)"

    def wait_healthy(self, timeout: float | None = None) -> dict[str, Any]:
        """Until /api/v1/health is green (`ATRIUM_UP_TIMEOUT` s, default 300: a busy machine starts slowly),
        saying every `UP_PROGRESS_EVERY_S` which processes are not healthy yet; at the timeout, which are not
        and where their logs are."""
        timeout = float(os.environ.get("ATRIUM_UP_TIMEOUT") or UP_TIMEOUT_S) if timeout is None else timeout
        url = f"http://127.0.0.1:{self.http_port}/api/v1/health"
        t0 = time.monotonic()
        deadline, next_progress = t0 + timeout, t0 + UP_PROGRESS_EVERY_S
        last: Any = None
        while time.monotonic() < deadline:
            self.supervise_once()
            try:
                r = httpx.get(url, timeout=5)
                last = r.json()
                if r.status_code == 200:
                    return last  # type: ignore[no-any-return]
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            if time.monotonic() >= next_progress:
                next_progress += UP_PROGRESS_EVERY_S
                waiting = "; ".join(self.not_healthy(last)) or "the health check"
                say(f"waiting for health ({time.monotonic() - t0:.0f}s of {timeout:.0f}s): {waiting}")
            time.sleep(0.5)
        raise StackError(
            f"Atrium did not become healthy within {timeout:.0f} s (ATRIUM_UP_TIMEOUT raises the limit). "
            f"Not healthy: {'; '.join(self.not_healthy(last)) or 'unknown'}. Logs: {self.data_dir / 'logs'}"
        )

    def not_healthy(self, health: Any) -> list[str]:
        """What is not healthy yet, per process: from the last health answer, or the gateway's own state."""
        if not isinstance(health, dict):
            why = f"not answering on port {self.http_port}" + (f" ({health})" if health else "")
            return [self.process_state("gateway", why)]
        out = []
        if health.get("nats") not in (None, "ok"):
            out.append("nats-server: the gateway cannot reach it")
        if health.get("postgres") not in (None, "ok", "unknown"):
            out.append(f"PostgreSQL: {health['postgres']}")
        for name, service in sorted((health.get("services") or {}).items()):
            if service.get("status") != "ok":
                why = service.get("error") or service.get("status") or "?"
                checks = {k: v for k, v in (service.get("checks") or {}).items() if v != "ok"}
                out.append(self.process_state(name, f"{why} {checks}" if checks else why))
        return out

    def process_state(self, name: str, why: str) -> str:
        """`name: why`, with whether its process runs or keeps exiting, and its log."""
        procs = [c for c in self.children if c.name == name or c.name.rsplit("-", 1)[0] == name]
        if not procs:
            return f"{name}: {why}"
        states = []
        for c in procs:
            running = c.proc is not None and c.proc.poll() is None
            state = "running" if running else "not running"
            if c.restarts:
                state += f", restarted {c.restarts}×"
            states.append(f"{c.name} {state}, log {c.log_path}")
        return f"{name}: {why} ({'; '.join(states)})"

    def debug_ports(self) -> dict[str, int]:
        """`--debug` names → the port each one's debugpy listens on; unknown names are refused up front."""
        if not self.debug:
            return {}
        names = [name for s in catalog.SERVICES for name in s.process_names] + ["gateway"]
        unknown = [n for n in self.debug if n not in names]
        if unknown:
            raise StackError(
                f"--debug {', '.join(unknown)}: no such process. Choose from: {', '.join(names)}"
            )
        if importlib.util.find_spec("debugpy") is None:
            say(
                "--debug needs debugpy, which is not installed: "
                f"{sys.executable} -m pip install debugpy (starting without the debugger)"
            )
            return {}
        first = int(os.environ.get("ATRIUM_DEBUG_PORT", DEBUG_PORT))
        ports = {name: first + i for i, name in enumerate(dict.fromkeys(self.debug))}
        for name, port in ports.items():
            if not port_is_free(port):
                raise StackError(f"--debug {name}: port {port} is in use (another debug session?)")
            say(f"{name}: debugger listening on 127.0.0.1:{port} (attach: docs/development.md, Debugging)")
        return ports

    # ---- supervision ----------------------------------------------------------------------------
    def supervise_once(self) -> None:
        now = time.monotonic()
        for server in self.servers:  # the servers first: services reconnect to them by themselves
            server.check(now)
        for c in self.children:
            if c.proc is None:
                if now >= c.next_start:
                    c.start()
                    say(f"{c.name} restarted (restart #{c.restarts})")
                continue
            code = c.proc.poll()
            if code is None:
                continue
            c.restarts += 1
            ran_for = now - c.started_at
            backoff = 1.0 if ran_for > 30 else min(30.0, 2 ** min(c.restarts, 5))
            say(
                f"{c.name} exited with code {code} after {ran_for:.0f}s; restarting in {backoff:.0f}s "
                f"(log: {c.log_path})"
            )
            c.proc, c.next_start = None, now + backoff

    def restart(self, names: set[str]) -> None:
        for c in self.children:
            if c.name.split("-")[0] in names or c.name in names:
                say(f"code changed: restarting {c.name}")
                c.stop(5)
                c.start()

    def stop(self) -> None:
        for c in reversed(self.children):
            if c.proc and c.proc.poll() is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for c in reversed(self.children):
            c.stop(10)
        if self.prometheus:
            self.prometheus.stop()
        if self.pg:
            self.pg.stop()
        if self.nats:
            self.nats.stop()
        (self.data_dir / "stack.json").unlink(missing_ok=True)

    def write_stack_info(self) -> None:
        info = {
            "url": f"http://localhost:{self.http_port}",
            "nats_url": self.nats_url,
            "pid": os.getpid(),
            "data": str(self.data_dir.resolve()),
            "started": time.time(),
        }
        (self.data_dir / "stack.json").write_text(json.dumps(info))


def read_stack_info(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "stack.json"
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
        return info  # type: ignore[no-any-return]
    except (ValueError, KeyError, ProcessLookupError, PermissionError):
        return None


def changed_services(paths: set[tuple[Any, str]]) -> set[str]:
    names: set[str] = set()
    everything = {s.name for s in catalog.SERVICES} | {"gateway"}
    for _, p in paths:
        rel = Path(p).resolve().relative_to(ROOT)
        top = rel.parts[0]
        if top in ("contracts",) or rel.parts[:2] == ("services", "kit"):
            return everything
        if top == "gateway":
            names.add("gateway")
        elif top == "services" and len(rel.parts) > 1:
            for s in catalog.SERVICES:
                if s.module.startswith(f"services.{rel.parts[1]}"):
                    names.add(s.name)
    return names


def debugpy_argv(port: int | None) -> list[str]:
    """The interpreter arguments that start a process under debugpy, or none; it runs at once (attach any time)."""
    return [] if port is None else ["-m", "debugpy", "--listen", f"127.0.0.1:{port}"]


def run(data_dir: Path, http_port: int, dev: bool, build_web: bool, debug: tuple[str, ...] = ()) -> int:
    t0 = time.monotonic()
    stack = DevStack(data_dir=data_dir, http_port=http_port, dev=dev, build_web=build_web, debug=debug)
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    # Explicit handlers: a stack started in the background inherits SIGINT as *ignored*.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        env = stack.prepare()
        say(ocr_readiness())
        if build_web and not dev:
            stack.build_web_app()
        stack.spawn_all(env)
        say(stack.start_prometheus())
        health = stack.wait_healthy()
        stack.write_stack_info()
        say(f"up in {time.monotonic() - t0:.1f}s — services: {', '.join(sorted(health.get('services', {})))}")
        print(
            f"\n  Atrium is running at http://localhost:{http_port}\n"
            f"  API docs: http://localhost:{http_port}/api/docs\n"
            + (f"  Web (Vite, hot reload): http://localhost:{http_port + 1}\n" if dev else "")
            + (f"  Prometheus: {stack.prometheus.url}\n" if stack.prometheus else "")
            + f"  Logs: {data_dir / 'logs'}   Stop: Ctrl-C\n",
            flush=True,
        )
        if dev:
            asyncio.run(_dev_loop(stack))
        else:
            while True:
                stack.supervise_once()
                time.sleep(0.5)
    except StackError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        say("stopping…")
    finally:
        stack.stop()
    return 0


def ocr_readiness() -> str:
    """What the text worker's OCR can read out of the box (English), what else is installed, and how to add
    more; which of them OCR uses is a Documents setting."""
    from services.extraction.ocr.tessdata import readiness

    return readiness(("eng",))


async def _dev_loop(stack: DevStack) -> None:
    from watchfiles import awatch

    async def supervise() -> None:
        while True:
            stack.supervise_once()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(supervise())
    try:
        async for changes in awatch(
            ROOT / "services",
            ROOT / "contracts",
            ROOT / "gateway",
            watch_filter=lambda _c, p: p.endswith(".py"),
        ):
            stack.restart(changed_services(changes))
    finally:
        task.cancel()
