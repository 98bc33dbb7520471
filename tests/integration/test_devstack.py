"""`./atrium up` for real: a separate process tree, its data surviving a restart, the CLI against it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psutil

from infra.embedded import free_port
from tests.conftest import PASSWORD, newest_link_token, unique_email
from tests.devstack import Up, atrium, up  # noqa: F401  (up: the fixture)


def test_up_register_restart_and_cli(up: Up, tmp_path: Path) -> None:
    up.start()
    health = httpx.get(f"{up.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    # The pipeline's work runs below the requests (infra/catalog.py): the documents service's second process
    # works through its events, the first answers its requests; the extraction workers run lower too.
    running = {}
    for p in psutil.Process(up.proc.pid).children(recursive=True):
        env = p.environ()
        if "ATRIUM_PROCESS" in env and "python" in p.name():
            running[env["ATRIUM_PROCESS"]] = (env.get("ATRIUM_ROLE"), p.nice())
    assert running["docs-1"] == ("requests", 0) and running["docs-2"] == ("events", 10), running
    assert running["extract"] == ("all", 10) and running["ai"] == ("all", 10), running
    assert running["auth"] == ("all", 0) and running["gateway"][1] == 0, running
    email = unique_email("devstack")
    r = httpx.post(f"{up.url}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 201, r.text
    token = newest_link_token(email, "confirm", up.data / "mail")  # signing in needs a confirmed address
    assert httpx.post(f"{up.url}/auth/email/verify", json={"token": token}, timeout=30).status_code == 200

    # the CLI finds the stack through --data and speaks the contracts
    res = atrium("bus", "request", "auth.health", "--data", str(up.data), data=up.data)
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "ok", res.stderr
    res = atrium(
        "bus", "request", "auth.user.register", '{"email": "nope"}', "--data", str(up.data), data=up.data
    )
    assert res.returncode == 1 and '"invalid"' in res.stderr
    res = atrium("bus", "request", "no.such.subject", "--data", str(up.data), data=up.data)
    assert res.returncode == 2 and "not a declared subject" in res.stderr

    # a second stack on the same data dir is refused with a clear message
    second = atrium("up", "--port", str(free_port()), "--data", str(up.data), "--no-web-build", data=up.data)
    assert second.returncode == 1 and "already running" in second.stdout
    # a busy port too
    busy = atrium(
        "up", "--port", str(up.port), "--data", str(tmp_path / "other"), "--no-web-build", data=up.data
    )
    assert busy.returncode == 1 and f"Port {up.port} is already in use" in busy.stdout

    up.stop()
    up.start()
    r = httpx.post(f"{up.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, "the account did not survive a restart"


def test_a_crashed_service_is_restarted(up: Up) -> None:
    up.start()
    service = next(
        p
        for p in psutil.Process(up.proc.pid).children(recursive=True)
        if "services.auth" in " ".join(p.cmdline())
    )
    service.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "auth exited with code" in up.log.read_text():
            break
        time.sleep(0.2)
    assert "restarting" in up.log.read_text()
    while time.monotonic() < deadline:
        if httpx.get(f"{up.url}/health", timeout=10).status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError("auth did not come back after a crash")


def _dap_request(port: int, command: str, arguments: dict[str, object]) -> dict[str, object]:
    """One Debug Adapter Protocol request over TCP, as an IDE sends it when it attaches; its response."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        body = json.dumps({"seq": 1, "type": "request", "command": command, "arguments": arguments}).encode()
        sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        buf = b""
        while True:
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                length = int(head.split(b":")[1])
                if len(rest) >= length:
                    msg = json.loads(rest[:length])
                    if msg.get("type") == "response":
                        return msg  # type: ignore[no-any-return]
                    buf = rest[length:]
                    continue
            chunk = sock.recv(65536)
            assert chunk, "debugpy closed the connection"
            buf += chunk


def test_a_service_under_the_debugger(up: Up) -> None:
    """`./atrium up --debug profile` runs that service under debugpy: the stack is healthy, an IDE attaches."""
    port = free_port()
    up.start(extra=("--debug", "profile"), env_extra={"ATRIUM_DEBUG_PORT": str(port)})
    assert f"profile: debugger listening on 127.0.0.1:{port}" in up.log.read_text()
    assert httpx.get(f"{up.url}/health", timeout=10).json()["services"]["profile"]["status"] == "ok"
    answer = _dap_request(port, "initialize", {"adapterID": "debugpy", "clientID": "atrium-test"})
    assert answer["success"] is True and answer["command"] == "initialize", answer


def test_debug_names_an_unknown_process(tmp_path: Path) -> None:
    res = atrium(
        "up", "--port", str(free_port()), "--data", str(tmp_path), "--debug", "nosuch", data=tmp_path
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "--debug nosuch: no such process. Choose from: auth, profile" in res.stdout
