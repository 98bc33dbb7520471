"""Issue 16, faults: a real `./atrium up` stack with a batch of documents in flight while nats-server or
PostgreSQL is SIGKILLed, the gateway is SIGKILLed mid-upload, or the object store is full. Meanwhile
every answer is a clear error (503 `unavailable` with Retry-After, 507 for a full store), never a hang
(the client's timeout is the test's bound) nor a 500; the devstack's supervisor restarts what crashed;
afterwards every document of the batch is `ready` and its file intact: none lost, none stuck."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from nats.js.errors import NotFoundError

from contracts.documents import OBJECT_BUCKET
from infra.backup import operator_login
from infra.devstack import read_stack_info
from infra.embedded import free_port
from services.kit.objects import unfinished_chunks
from tests.conftest import CORPUS, PASSWORD, unique_email
from tests.devstack import DEADLINE_S, TERMINAL, Up, atrium, download, login
from tests.fakes_llm.server import FakeLLM

pytestmark = pytest.mark.slow

FILES = [CORPUS / "synthetic" / n for n in ("invoice_1p.pdf", "letter_1p.pdf", "invoice_10p.pdf")]
BATCH = 6
PROBE_TIMEOUT_S = 30  # an answer slower than this is a hang


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    # The AI fault points the stack at a provider on this machine (tests/fakes_llm).
    # Uploads cut off for 20 s count as abandoned, swept every 5 s (production: an hour, every 10 minutes).
    env = {
        "ATRIUM_AI_ALLOW_LOCAL_SERVERS": "1",
        "ATRIUM_UPLOAD_ABANDONED_AFTER_S": "20",
        "ATRIUM_UPLOAD_SWEEP_EVERY_S": "5",
    }
    up = Up(tmp_path_factory.mktemp("faults") / "data", free_port(), env)
    up.start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture(scope="module")
def user(stack: Up) -> dict[str, str]:
    email = unique_email("faults")
    stack.register(email)
    return login(stack.url, email)


def child(up: Up, match: Callable[[psutil.Process], bool]) -> psutil.Process:
    assert up.proc is not None
    for p in psutil.Process(up.proc.pid).children(recursive=False):
        try:
            if match(p):
                return p
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("no such process under atrium up")


def nats_server(up: Up) -> psutil.Process:
    return child(up, lambda p: p.name() == "nats-server")


def postgres(up: Up) -> psutil.Process:
    return child(up, lambda p: p.name() == "postgres" or "postgres" in p.cmdline()[0:1])


def gateway(up: Up) -> psutil.Process:
    return child(up, lambda p: p.cmdline()[1:3] == ["-m", "gateway"])


def send(url: str, headers: dict[str, str], path: Path, name: str) -> httpx.Response:
    files = {"file": (name, path.read_bytes(), "application/pdf")}
    return httpx.post(f"{url}/documents", headers=headers, files=files, timeout=PROBE_TIMEOUT_S)


def batch(up: Up, user: dict[str, str], tag: str) -> list[tuple[str, Path]]:
    out = []
    for i in range(BATCH):
        path = FILES[i % len(FILES)]
        r = send(up.url, user, path, f"{tag}-{i}.pdf")
        assert r.status_code == 201, r.text
        out.append((r.json()["documents"][0]["document"]["id"], path))
    return out


def clear_error(r: httpx.Response, allowed: frozenset[int] = frozenset({503})) -> None:
    """An error the user can act on: the envelope with its code, and when to try again."""
    assert r.status_code in allowed, (r.status_code, r.text[:500])
    body = r.json()["error"]
    assert body["code"] and body["message"], body
    if r.status_code == 503:
        assert body["code"] == "unavailable", body
        assert int(r.headers["Retry-After"]) > 0, r.headers


def probe_until_recovered(up: Up, user: dict[str, str], seen: Counter[int]) -> None:
    """List documents until the stack answers again; every answer meanwhile is 200 or a clear 503."""
    deadline = time.monotonic() + DEADLINE_S
    ok_in_a_row = 0
    while ok_in_a_row < 3:
        assert time.monotonic() < deadline, f"the stack did not recover: {dict(seen)}"
        try:
            r = httpx.get(f"{up.url}/documents", headers=user, timeout=PROBE_TIMEOUT_S)
        except httpx.TimeoutException as exc:
            raise AssertionError("a request hung while a server was down") from exc
        except httpx.TransportError:
            seen[0] += 1  # the gateway itself restarting: the connection is refused
            time.sleep(0.5)
            continue
        seen[r.status_code] += 1
        if r.status_code == 200:
            ok_in_a_row += 1
            continue
        ok_in_a_row = 0
        clear_error(r)
        time.sleep(0.3)


def all_ready(up: Up, user: dict[str, str], docs: list[tuple[str, Path]]) -> None:
    """Every document of the batch ends `ready` with its file intact (a 503 on the way is fine)."""
    deadline = time.monotonic() + DEADLINE_S
    for doc_id, path in docs:
        while True:
            r = httpx.get(f"{up.url}/documents/{doc_id}", headers=user, timeout=PROBE_TIMEOUT_S)
            if r.status_code == 200 and r.json()["status"] in TERMINAL:
                break
            if r.status_code != 200:
                clear_error(r)
            assert time.monotonic() < deadline, f"document {doc_id} is stuck: {r.text[:300]}"
            time.sleep(0.5)
        assert r.json()["status"] == "ready", r.json()
        assert download(up.url, user, f"/documents/{doc_id}/file") == path.read_bytes()


def kill_server_while_in_flight(up: Up, user: dict[str, str], find: Callable[[Up], psutil.Process]) -> None:
    docs = batch(up, user, "before")
    victim = find(up)
    what = victim.name()
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    seen: Counter[int] = Counter()
    # Uploads while it is down: refused clearly, or (once it is back) accepted; none hangs.
    while not seen[201] and not seen[503] >= 3:
        r = send(up.url, user, FILES[0], "during.pdf")
        seen[r.status_code] += 1
        if r.status_code == 201:
            docs.append((r.json()["documents"][0]["document"]["id"], FILES[0]))
        else:
            clear_error(r)
    probe_until_recovered(up, user, seen)
    assert find(up).pid != victim.pid, "the supervisor did not restart it"
    docs += batch(up, user, "after")
    all_ready(up, user, docs)
    assert seen[503], f"no clear error was seen while the server was down: {dict(seen)}"
    print(f"{what} killed: answers meanwhile {dict(seen)}")  # for the report (-rA)


def test_nats_server_killed_and_restarted(stack: Up, user: dict[str, str]) -> None:
    kill_server_while_in_flight(stack, user, nats_server)


def test_postgres_killed_and_restarted(stack: Up, user: dict[str, str]) -> None:
    kill_server_while_in_flight(stack, user, postgres)


def test_gateway_killed_mid_upload(stack: Up, user: dict[str, str]) -> None:
    docs = batch(stack, user, "gw")
    victim = gateway(stack)
    big = b"%PDF-1.4\n% a slow upload\n" + b"0" * (8 * 1024 * 1024) + b"%%EOF\n"

    stored_before = uploaded(stack)

    def slowly() -> Iterator[bytes]:
        boundary = b"--cut\r\n"
        # A whole first file: stored complete before the second arrives, its document never asked for.
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="whole.pdf"\r\n'
        yield b"Content-Type: application/pdf\r\n\r\n" + FILES[0].read_bytes() + b"\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="cut.pdf"\r\n'
        yield b"Content-Type: application/pdf\r\n\r\n"
        for i in range(0, len(big), 256 * 1024):
            if i == 2 * 256 * 1024:
                wait_for(lambda: unfinished(stack), "part of the upload in the store")
                victim.send_signal(signal.SIGKILL)  # mid-upload: part of the file is in the store
            yield big[i : i + 256 * 1024]
            time.sleep(0.05)
        yield b"\r\n--cut--\r\n"

    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{stack.url}/documents",
            headers={**user, "Content-Type": "multipart/form-data; boundary=cut"},
            content=slowly(),
            timeout=PROBE_TIMEOUT_S,
        )
    cut = unfinished(stack)
    assert cut, "the cut-off upload left nothing in the store"
    whole = uploaded(stack) - stored_before
    assert len(whole) == 1, f"the whole first file is not in the store as one object: {whole}"
    seen: Counter[int] = Counter()
    probe_until_recovered(stack, user, seen)
    assert gateway(stack).pid != victim.pid
    # The documents service sweeps what the cut-off upload stored (no orphan left taking space).
    wait_for(lambda: not cut & unfinished(stack), f"the cut-off upload's chunks swept: {cut}")
    # And the whole file no document records, after the same grace period (ATRIUM_UPLOAD_ABANDONED_AFTER_S).
    wait_for(lambda: not whole & uploaded(stack), f"the unrecorded whole file swept: {whole}")
    print(f"gateway killed: answers meanwhile {dict(seen)} (0: connection refused)")
    names = {
        d["filename"] for d in httpx.get(f"{stack.url}/documents", headers=user, timeout=30).json()["items"]
    }
    assert "cut.pdf" not in names, "a cut-off upload became a document"
    assert "whole.pdf" not in names, "the upload was cut off before its documents were asked for"
    docs += batch(stack, user, "after-gw")
    all_ready(stack, user, docs)


def wait_for(ok: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def uploaded(up: Up) -> set[str]:
    """The documents store's whole uploaded files (named by a UUID, as the gateway names them)."""

    async def look(js: Any) -> set[str]:
        try:
            infos = await (await js.object_store(OBJECT_BUCKET)).list(ignore_deletes=True)
        except NotFoundError:
            return set()
        return {i.name for i in infos if len(i.name) == 36 and i.name.count("-") == 4}

    return asyncio.run(_with_operator(up, look))  # type: ignore[no-any-return]


def unfinished(up: Up) -> set[str]:
    """The documents store's chunks that no object's meta entry points to (an upload under way or cut off)."""

    async def look(js: Any) -> set[str]:
        return set(await unfinished_chunks(await js.object_store(OBJECT_BUCKET)))

    return asyncio.run(_with_operator(up, look))  # type: ignore[no-any-return]


async def _with_operator(up: Up, what: Callable[[Any], Any]) -> Any:
    import nats

    info = read_stack_info(up.data)
    assert info
    nc = await nats.connect(info["nats_url"], **operator_login(up.data))
    try:
        return await what(nc.jetstream())
    finally:
        await nc.close()


def set_store_limit(up: Up, *, room: int | None = None, limit: int | None = None) -> int:
    """The documents store's byte limit set to `limit`, or to what it holds plus `room`; the old limit."""

    async def change(js: Any) -> int:
        info = await js.stream_info(f"OBJ_{OBJECT_BUCKET}")
        old = int(info.config.max_bytes)
        info.config.max_bytes = limit if limit is not None else (info.state.bytes or 0) + (room or 0)
        await js.update_stream(info.config)
        return old

    return asyncio.run(_with_operator(up, change))  # type: ignore[no-any-return]


def test_object_store_full(stack: Up, user: dict[str, str]) -> None:
    """The store is full while a batch is being processed (its text results and previews go to the same
    store): uploads get 507 meanwhile, and once there is room again every document finishes."""
    docs = batch(stack, user, "full")
    limit = set_store_limit(stack, room=0)
    try:
        r = send(stack.url, user, FILES[0], "refused.pdf")
        clear_error(r, frozenset({507}))
        assert r.json()["error"]["code"] == "insufficient_storage", r.text
        time.sleep(10)  # not a timing assertion: the workers meet the full store with the batch
    finally:
        set_store_limit(stack, limit=limit)
    docs += batch(stack, user, "after-full")
    all_ready(stack, user, docs)


class InThread:
    """An event loop of its own for the fake provider, beside these synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


PROVIDER_DOWN_S = 60


def test_ai_provider_down_for_a_minute(stack: Up, user: dict[str, str]) -> None:
    """The provider refuses connections for a minute while a batch is analysed: the documents wait
    (the analyze task shows the provider's error and that it will retry) and all end `ready` once it
    is back, analysed by it."""
    admin_email = unique_email("admin")
    res = atrium(
        "admin", "create", "--email", admin_email, "--data", str(stack.data), data=stack.data,
        env={"ATRIUM_ADMIN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    admin = login(stack.url, admin_email)
    side = InThread()
    fake = FakeLLM()
    side.run(fake.start())
    try:
        r = httpx.patch(
            f"{stack.url}/apps/documents/settings",
            headers=admin,
            json={"provider": "openai_compatible", "base_url": fake.base_url + "/v1", "model": "fault-llm"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        side.run(fake.stop())  # down: connections refused
        down_until = time.monotonic() + PROVIDER_DOWN_S
        docs = batch(stack, user, "ai")
        waiting = set()
        while time.monotonic() < down_until:
            for doc_id, _ in docs:
                body = httpx.get(
                    f"{stack.url}/documents/{doc_id}", headers=user, timeout=PROBE_TIMEOUT_S
                ).json()
                assert body["status"] not in TERMINAL, (
                    f"the document gave up while the provider was down: {body}"
                )
                for t in body["tasks"]:
                    if t["reason"] == "provider_error" and t["error"]:
                        waiting.add(doc_id)
            time.sleep(2)
        assert waiting, "no document showed the provider's error while it was down"
        side.run(fake.start())  # back on the same address
        all_ready(stack, user, docs)
        for doc_id, _ in docs:
            body = httpx.get(f"{stack.url}/documents/{doc_id}", headers=user, timeout=30).json()
            providers = {f["provider"] for f in body["fields"].values() if f}
            assert providers == {"openai_compatible"}, body["fields"]
    finally:
        side.run(fake.stop())
        side.close()
