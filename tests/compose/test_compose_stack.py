"""compose.yaml, started for real under podman: the production shape checked on the running containers.

The project's images are built from its Dockerfiles (on locally built stand-ins of the registry's base
images, tests/compose/podman.py) and compose.yaml is started as it is, in its dependency order. Then,
through nginx's one published port: accounts, uploads (a text PDF and a scanned one), search, download,
the browser app; two extract workers and two gateways sharing the work; Prometheus scraping every
process; and on the containers themselves: who publishes a port, who can reach the outside, users and capabilities of every process,
read-only roots, which secrets each container can read, and data that survives `down` and `up`.

Slow (minutes; most of it building images on a cold machine): `./atrium compose-test`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.embedded import free_port
from tests.compose.podman import ComposeStack, ensure_base_images, ensure_tools, podman
from tests.conftest import CORPUS, PASSWORD, ROOT, newest_link_token, unique_email

pytestmark = pytest.mark.slow

PROJECT = "atrium-compose-test"
SYNTHETIC = CORPUS / "synthetic"
SCANNED = CORPUS / "scanned" / "scan_invoice_1p.pdf"
TEXT_PDFS = ["invoice_1p.pdf", "letter_1p.pdf", "invoice_10p.pdf", "letter_10p.pdf"]
ADMIN_EMAIL = "first-admin@example.com"


ARTIFACTS = ROOT / "test-artifacts" / "compose"


def _log(msg: str) -> None:
    """To the terminal (with -s: ./atrium compose-test) and to test-artifacts/compose/report.txt."""
    print(f"[compose-test] {msg}", flush=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "report.txt", "a") as report:
        report.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    ensure_tools()
    (ARTIFACTS / "report.txt").unlink(missing_ok=True)
    t = time.monotonic()
    built = ensure_base_images()
    _log(f"stand-in base images: {', '.join(built) or 'all cached'} [{time.monotonic() - t:.0f}s]")
    port = free_port()
    stack = ComposeStack(
        project=PROJECT,
        http_port=port,
        env={
            "ATRIUM_SECRET": secrets.token_urlsafe(32),
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "ATRIUM_PUBLIC_URL": f"http://127.0.0.1:{port}",
        },
    )
    stack.down(volumes=True)  # what a crashed earlier run left behind
    try:
        try:
            stack.build()
            stack.up()
        except BaseException:
            dump_logs(stack, request, "start")
            raise
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        _log(
            f"timings (s): {json.dumps({k: round(v) for k, v in stack.timings.items()})}; load average {load}"
        )
        yield stack
    finally:
        stack.down(volumes=True)


# ---- helpers --------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def logs_when_a_test_fails(request: pytest.FixtureRequest, deployment: ComposeStack) -> Iterator[None]:
    """The containers' logs right after a failing test (a later test may restart them)."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed != failed:
        dump_logs(deployment, request, request.node.name)


def dump_logs(stack: ComposeStack, request: pytest.FixtureRequest, after: str) -> None:
    """Every container's log to test-artifacts/compose/, its restarts and log's end to the terminal (CI's log)."""
    out = ARTIFACTS / after
    out.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for name in stack.containers(all=True):
            text = stack.logs(name)
            (out / f"{name}.log").write_text(text)
            restarts = stack.inspect(name).get("RestartCount")
            _log(
                f"--- after {after}: {name} (restarted {restarts}×), end of its log (all: {out}):\n{text[-2000:]}"
            )


def api(stack: ComposeStack) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.base_url}/api/v1", timeout=60)


def register_and_login(
    stack: ComposeStack, http: httpx.Client, email: str | None = None
) -> tuple[str, dict[str, str]]:
    """Register, open the confirmation link from auth's dev outbox (its volume), sign in."""
    email = email or unique_email("compose")
    r = http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = newest_link_token(email, "confirm", volume_dir(stack, "auth-state") / "mail")
    r = http.post("/auth/email/verify", json={"token": token})
    assert r.status_code == 200, r.text
    return email, login(http, email)


def login(http: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = http.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(http: httpx.Client, headers: dict[str, str], path: Path) -> str:
    r = http.post(
        "/documents", headers=headers, files={"file": (path.name, path.read_bytes(), "application/pdf")}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["documents"][0]["document"]["id"])


def wait_final(http: httpx.Client, headers: dict[str, str], doc_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        body = http.get(f"/documents/{doc_id}", headers=headers).json()
        if body["status"] in ("ready", "needs_ocr", "failed"):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"document {doc_id} stayed {body['status']}: {body.get('tasks')}"
        time.sleep(0.5)


def container_status(stack: ComposeStack, name: str) -> str:
    """Every process's /proc/<pid>/status inside the container (as its own user would see them)."""
    script = 'for f in /proc/[0-9]*/status; do cat "$f" 2>/dev/null; echo; done'
    return stack.exec(name, "sh", "-c", script).stdout


def can_connect_from(stack: ComposeStack, name: str, host: str, port: int) -> bool:
    """A TCP connection from inside `name`'s network namespace (a throwaway container sharing it)."""
    code = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=5).close()\n"
        "except OSError as e:\n"
        "    print(e); sys.exit(1)\n"
    )
    res = podman(
        "run", "--rm", "--network", f"container:{name}", "--user", "10001", "--cap-drop", "ALL",
        "atrium/python:latest", "python", "-c", code, check=False, timeout=60,
    )  # fmt: skip
    return res.returncode == 0


def secrets_readable_by(stack: ComposeStack, name: str, wanted: dict[str, str]) -> tuple[set[str], str]:
    """Which of `wanted` ({label: value}) the container's user can read, in its environment or in any file
    on its volumes (searched inside the container, as that user), and a listing of those files."""
    env = stack.exec(name, "cat", "/proc/1/environ").stdout.split("\0")
    found = {label for label, value in wanted.items() if any(e.endswith(f"={value}") for e in env)}
    mounts = [m for m in stack.inspect(name)["Mounts"] if m.get("Type") == "volume"]
    dests = " ".join(f"'{m['Destination']}'" for m in mounts)
    labels = list(wanted)
    if mounts:
        script = (
            f'i=0; while IFS= read -r s; do i=$((i+1)); grep -rsqF -e "$s" {dests} && echo "$i"; done; true'
        )
        hits = stack.exec(name, "sh", "-c", script, input="\n".join(wanted[k] for k in labels) + "\n")
        found |= {labels[int(i) - 1] for i in hits.stdout.split()}
    listing = []
    for m in mounts:
        files = stack.exec(name, "find", m["Destination"], "-type", "f").stdout.split()
        mode = "rw" if m.get("RW") else "ro"
        shown = (
            ", ".join(f.removeprefix(m["Destination"] + "/") for f in files)
            if len(files) <= 6
            else f"{len(files)} data files"
        )
        listing.append(
            f"{m['Destination']} ({m['Name'].removeprefix(stack.project + '_')}, {mode}): {shown or '-'}"
        )
    return found, "; ".join(listing) or "no volumes"


def log_lines(stack: ComposeStack, name: str) -> list[dict]:
    """The container's JSON log lines (services.kit.logging)."""
    lines = []
    for line in stack.logs(name).splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def volume_dir(stack: ComposeStack, volume: str) -> Path:
    return Path(
        podman("volume", "inspect", "--format", "{{.Mountpoint}}", f"{stack.project}_{volume}").stdout.strip()
    )


# ---- the shape, on the running containers ------------------------------------------------------------------
def test_only_nginx_publishes_a_port(deployment: ComposeStack) -> None:
    published = {}
    for name in deployment.containers():
        ports = deployment.inspect(name)["NetworkSettings"]["Ports"] or {}
        bound = {p: b for p, b in ports.items() if b}
        if bound:
            published[name] = bound
    assert list(published) == deployment.containers("web"), published
    [(container_port, bindings)] = next(iter(published.values())).items()
    assert container_port == "8080/tcp" and bindings[0]["HostPort"] == str(deployment.http_port)


def test_the_back_end_cannot_reach_outside(deployment: ComposeStack) -> None:
    # A package registry this machine may reach; nginx (also on the edge network) shows the probe works.
    registry = socket.gethostbyname("deb.debian.org")
    web = deployment.containers("web")[0]
    assert can_connect_from(deployment, web, registry, 80), (
        "the probe cannot reach the registry even from nginx"
    )
    for name in deployment.containers():
        if name == web:
            continue
        assert not can_connect_from(deployment, name, registry, 80), f"{name} reached {registry} outside"
    # …while the back end reaches what it needs, by service name, on the internal network.
    gateway = deployment.containers("gateway")[0]
    assert can_connect_from(deployment, gateway, "nats", 4222)
    assert can_connect_from(deployment, gateway, "postgres", 5432)


def test_every_process_is_unprivileged(deployment: ComposeStack) -> None:
    report = []
    for name in deployment.containers():
        status = container_status(deployment, name)
        blocks = [b for b in status.split("\n\n") if b.startswith("Name:")]
        assert blocks, f"no process status from {name}"
        for block in blocks:
            fields = dict(line.split(":\t", 1) for line in block.splitlines() if ":\t" in line)
            uids, gids = fields["Uid"].split(), fields["Gid"].split()
            assert "0" not in uids and "0" not in gids, (
                f"{name}: {fields['Name']} runs as root: {uids} {gids}"
            )
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(fields[cap], 16) == 0, f"{name}: {fields['Name']} has {cap} {fields[cap]}"
            assert fields["NoNewPrivs"].strip() == "1", f"{name}: {fields['Name']} may gain privileges"
        first = dict(line.split(":\t", 1) for line in blocks[0].splitlines() if ":\t" in line)
        report.append(
            f"{name}: {len(blocks)} processes (with this probe), uid {first['Uid'].split()[0]}, no capabilities"
        )
    _log("processes:\n  " + "\n  ".join(report))


def test_root_file_systems_are_read_only(deployment: ComposeStack) -> None:
    for name in deployment.containers():
        assert deployment.inspect(name)["HostConfig"]["ReadonlyRootfs"] is True, name
        res = deployment.exec(name, "sh", "-c", "touch /usr/probe-$$ 2>&1", check=False)
        assert res.returncode != 0 and "Read-only file system" in res.stdout, f"{name}: {res.stdout}"


def test_each_container_holds_only_its_own_secrets(deployment: ComposeStack) -> None:
    state = volume_dir(deployment, "atrium-state") / "secrets"
    nats_passwords: dict[str, str] = json.loads((state / "nats.json").read_text())
    db_passwords: dict[str, str] = json.loads((state / "db.json").read_text())
    keys = list((volume_dir(deployment, "auth-state") / "keys" / "auth").glob("*.pem"))
    assert keys, "auth made no signing key"
    service_of = {name: deployment.inspect(name)["Config"]["Labels"]["com.docker.compose.service"]
                  for name in deployment.containers()}  # fmt: skip
    expected: dict[str, set[str]] = {}  # secret → the services that may read it
    wanted: dict[str, str] = {}
    # The documents service runs as two containers (requests, events), both with its credentials.
    containers = {"docs": {"docs", "docs-events"}}
    for user, pw in nats_passwords.items():
        wanted[f"NATS password of {user}"] = pw
        expected[f"NATS password of {user}"] = containers.get(user, {user}) - {"operator"}
    for svc, pw in db_passwords.items():
        wanted[f"database password of {svc}"], expected[f"database password of {svc}"] = (
            pw,
            containers.get(svc, {svc}),
        )
    wanted["POSTGRES_PASSWORD"], expected["POSTGRES_PASSWORD"] = (
        deployment.env["POSTGRES_PASSWORD"],
        {"postgres"},
    )
    wanted["ATRIUM_SECRET"], expected["ATRIUM_SECRET"] = (
        deployment.env["ATRIUM_SECRET"],
        {"docs", "docs-events", "ai"},
    )
    for key in keys:
        body = key.read_text().strip().splitlines()[1]  # a line of the private key itself
        wanted[f"signing key {key.stem}"], expected[f"signing key {key.stem}"] = body, {"auth"}
    listing = []
    readers: dict[str, set[str]] = {what: set() for what in wanted}
    for name, svc in service_of.items():
        found, files = secrets_readable_by(deployment, name, wanted)
        listing.append(f"{name}: {files}; secrets: {sorted(found) or '-'}")
        for what in found:
            readers[what].add(svc)
    _log("what each container can read:\n  " + "\n  ".join(listing))
    wrong = {what: sorted(readers[what]) for what in wanted if readers[what] != expected[what]}
    assert not wrong, f"secrets readable by the wrong containers (secret: readers): {wrong}"


# ---- through nginx ----------------------------------------------------------------------------------------
def test_accounts_documents_search_and_download(deployment: ComposeStack) -> None:
    with api(deployment) as http:
        email, headers = register_and_login(deployment, http)
        assert http.get("/auth/me", headers=headers).json()["email"] == email
        invoice = SYNTHETIC / "invoice_1p.pdf"
        text_id, scan_id = upload(http, headers, invoice), upload(http, headers, SCANNED)
        text_doc = wait_final(http, headers, text_id)
        assert text_doc["status"] == "ready", text_doc
        assert "INV-2091827" in " ".join(p["text"] for p in text_doc["pages"])
        scan_doc = wait_final(http, headers, scan_id)
        # The scan has no text layer: OCR in the extract container reads it (English from the image's venv).
        assert scan_doc["status"] == "ready", scan_doc
        assert "INV-2091827" in " ".join(p["text"] for p in scan_doc["pages"]), scan_doc["pages"]
        found = http.get("/documents", headers=headers, params={"q": "INV-2091827"}).json()
        assert {d["id"] for d in found["items"]} == {text_id, scan_id}, found
        r = http.get(f"/documents/{text_id}/file", headers=headers)
        assert r.status_code == 200 and r.content == invoice.read_bytes()
        # Someone else sees none of it.
        _, other = register_and_login(deployment, http)
        assert http.get(f"/documents/{text_id}", headers=other).status_code == 404
        assert http.get(f"/documents/{text_id}/file", headers=other).status_code == 404


def test_two_workers_and_two_gateways_share_the_work(deployment: ComposeStack) -> None:
    extract, gateways = deployment.containers("extract"), deployment.containers("gateway")
    assert len(extract) == 2 and len(gateways) == 2, (extract, gateways)
    hostnames = {deployment.inspect(n)["Config"]["Hostname"]: n for n in extract}
    marker = uuid.uuid4().hex  # this test's requests in the gateways' logs
    ids: list[str] = []
    with api(deployment) as http:
        http.headers["X-Request-Id"] = marker
        for _ in range(2):
            _, headers = register_and_login(deployment, http)
            ids += [upload(http, headers, SYNTHETIC / name) for name in TEXT_PDFS]
            for doc_id in ids[-len(TEXT_PDFS) :]:
                doc = wait_final(http, headers, doc_id)
                assert doc["status"] == "ready", doc
                runs = [t for t in doc["tasks"] if t["kind"] == "extract"]
                assert len(runs) == 1 and runs[0]["attempt"] == 1, runs
                assert runs[0]["worker"].split(":")[0] in hostnames, (runs[0]["worker"], hostnames)
    extracted = {
        n: [
            e["document_id"]
            for e in log_lines(deployment, n)
            if e.get("msg") == "extracted" and e.get("document_id") in ids
        ]
        for n in extract
    }
    every = [i for n in extract for i in extracted[n]]
    assert sorted(every) == sorted(ids), f"each document extracted exactly once: {extracted}"
    assert all(extracted[n] for n in extract), f"one worker did all the work: {extracted}"
    served = {n: sum(e.get("request_id") == marker for e in log_lines(deployment, n)) for n in gateways}
    assert all(served.values()), f"nginx sent every request to one gateway: {served}"
    _log(f"extract workers: { {n: len(v) for n, v in extracted.items()} }; gateway requests: {served}")


def test_the_pipeline_runs_below_the_requests(deployment: ComposeStack) -> None:
    """As under `atrium up`: each Python container's process runs at the niceness compose gives it (the
    documents service's events and the extraction workers at 10, what answers requests at 0) — a hardened
    container without capabilities may lower its own priority."""
    import yaml

    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    seen = {}
    for service, svc in services.items():
        if svc.get("command", [""])[0] != "python" or service == "migrate":
            continue
        want = int(svc["environment"].get("ATRIUM_NICE", 0))
        for name in deployment.containers(service):
            stat = deployment.exec(name, "cat", "/proc/1/stat").stdout
            seen[name] = int(stat.rsplit(")", 1)[1].split()[16])  # field 19: nice
            assert seen[name] == want, f"{name} runs at niceness {seen[name]}, compose says {want}"
    assert sorted(set(seen.values())) == [0, 10], seen


def test_prometheus_scrapes_every_process(deployment: ComposeStack) -> None:
    """Issue 17: compose's Prometheus finds every process (each replica) by DNS on the backend network and
    evaluates the alert rules; it publishes no port (checked above), so it is asked from inside its container."""
    import yaml

    [prom] = deployment.containers("prometheus")

    def ask(path: str) -> dict:
        out = deployment.exec(prom, "wget", "-qO-", f"http://127.0.0.1:9090/api/v1/{path}").stdout
        return json.loads(out)  # type: ignore[no-any-return]

    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "compose.yml").read_text())
    names = config["scrape_configs"][0]["dns_sd_configs"][0]["names"]
    expected = {name: len(deployment.containers(name)) for name in names}
    assert expected["extract"] == 2 and expected["gateway"] == 2, expected
    deadline = time.monotonic() + 180
    while True:
        result = ask("query?query=up%7Bjob%3D%22atrium%22%7D")["data"]["result"]
        up: dict[str, int] = {}
        for series in result:
            if series["value"][1] == "1":
                up[series["metric"]["process"]] = up.get(series["metric"]["process"], 0) + 1
        if up == expected:
            break
        assert time.monotonic() < deadline, f"Prometheus scrapes {up}, expected {expected}: {result}"
        time.sleep(3)
    # The documents processed by the tests above show up in a PromQL query.
    served = ask("query?query=sum%28atrium_http_requests_total%29")["data"]["result"]
    assert served and float(served[0]["value"][1]) > 0, served
    rules = yaml.safe_load((ROOT / "infra" / "prometheus" / "alerts.yml").read_text())
    wanted = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    loaded = {r["name"] for g in ask("rules")["data"]["groups"] for r in g["rules"]}
    assert loaded == wanted
    _log(f"prometheus: {sum(expected.values())} processes up, {len(loaded)} alert rules")


def test_the_browser_app_loads(deployment: ComposeStack) -> None:
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, sign_in

    with api(deployment) as http:
        email, _ = register_and_login(deployment, http)

    async def browse() -> list[str]:
        from playwright.async_api import async_playwright

        errors: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                ctx = await browser.new_context(base_url=deployment.base_url)
                ctx.set_default_timeout(20_000)
                page = await ctx.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on(
                    "response",
                    lambda r: (
                        errors.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 500 else None
                    ),
                )
                await sign_in(page, email)
                await page.goto("/documents")
                await page.get_by_role("heading", name="Documents").first.wait_for()
            finally:
                await browser.close()
        return errors

    assert asyncio.run(browse()) == []


def test_first_admin_from_the_migrate_container(deployment: ComposeStack) -> None:
    password = "an admin passphrase 7"
    res = deployment.compose(
        "run", "--rm", "--no-deps", "-e", f"ATRIUM_ADMIN_PASSWORD={password}", "migrate",
        "python", "-m", "infra.cli", "admin", "create", "--email", ADMIN_EMAIL, "--data", "/var/lib/atrium",
    )  # fmt: skip
    assert ADMIN_EMAIL in res.stdout + res.stderr
    with api(deployment) as http:
        headers = login(http, ADMIN_EMAIL, password)
        assert http.get("/auth/me", headers=headers).json()["role"] == "admin"


def test_data_survives_down_and_up(deployment: ComposeStack) -> None:
    with api(deployment) as http:
        email, headers = register_and_login(deployment, http)
        doc_id = upload(http, headers, SYNTHETIC / "letter_1p.pdf")
        assert wait_final(http, headers, doc_id)["status"] == "ready"
    t = time.monotonic()
    deployment.down()
    assert deployment.containers(all=True) == []
    stopped = time.monotonic() - t
    deployment.up()
    _log(f"down {stopped:.0f}s, up again {deployment.timings['up']:.0f}s")
    with api(deployment) as http:
        # The token from before still verifies (the signing keys are on auth's volume), the account and the
        # document are in PostgreSQL, the file in JetStream's object store.
        assert http.get("/auth/me", headers=headers).json()["email"] == email
        assert login(http, email)
        doc = http.get(f"/documents/{doc_id}", headers=headers).json()
        assert doc["status"] == "ready", doc
        r = http.get(f"/documents/{doc_id}/file", headers=headers)
        assert r.content == (SYNTHETIC / "letter_1p.pdf").read_bytes()
