"""The cluster configuration of infra/nats/cluster.py, really started: three nats-server nodes on this
machine, the services' own ensure_* helpers with ATRIUM_JS_REPLICAS=3, then the node leading the
documents stream is killed — events, blobs and settings written before are all still there, and the
cluster keeps accepting (and de-duplicating) new ones."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio

from contracts import Header
from contracts.documents import AI_HEALTH, OBJECT_BUCKET
from contracts.streams import DOCUMENTS_STREAM
from infra.embedded import EmbeddedNats, die_with_parent, free_port, wait_for_port
from infra.nats.accounts import OPERATOR
from infra.nats.cluster import Node, write_cluster
from services.kit.bus import Service, ensure_kv, ensure_object_store, ensure_streams
from services.kit.client import call
from services.kit.config import NATS_SECRETS_FILE, NatsLogin, ServiceSettings
from services.kit.objects import ObjectWriter

SUBJECT = "events.docs.uploaded"


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.nodes = [
            Node(
                name=f"node-{i}",
                host="127.0.0.1",
                client_port=free_port(),
                cluster_port=free_port(),
                monitor_port=free_port(),
                store_dir=str(root / f"js-{i}"),
            )
            for i in range(3)
        ]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{n.client_port}" for n in self.nodes]

    def start(self) -> None:
        write_cluster(self.root, self.nodes, listen_host="127.0.0.1")
        for node in self.nodes:
            log = self.root / f"{node.name}.log"
            with open(log, "ab") as out:
                self.procs[node.name] = subprocess.Popen(
                    [EmbeddedNats.binary(), "-c", str(self.root / f"{node.name}.conf")],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent,
                )
        for node in self.nodes:
            wait_for_port(
                node.client_port, self.procs[node.name], self.root / f"{node.name}.log", 20, "nats-server"
            )

    def password(self, user: str) -> str:
        return str(json.loads((self.root / "secrets" / NATS_SECRETS_FILE).read_text())[user])

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.stop()


async def eventually(what: str, probe: Any, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = await probe()
            if result:
                return result
        except Exception as exc:  # the cluster is still electing leaders
            last = exc
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout:g} s (last error: {last!r})")


async def test_three_nodes_lose_nothing_when_the_stream_leader_dies(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_JS_REPLICAS", "3")
    with pytest.raises(nats.errors.Error):  # no anonymous client, as on the single server
        await nats.connect(servers=cluster.servers, allow_reconnect=False, connect_timeout=2)
    nc = await nats.connect(
        servers=cluster.servers,
        user=OPERATOR,
        password=cluster.password(OPERATOR),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    try:
        js = nc.jetstream(timeout=10)
        await eventually("a JetStream meta leader", js.account_info)

        async def streams_declared() -> bool:
            await ensure_streams(js, [DOCUMENTS_STREAM])
            return True

        await eventually("the documents stream", streams_declared)
        info = await js.stream_info(DOCUMENTS_STREAM.name)
        assert info.config.num_replicas == 3
        await eventually("all replicas current", lambda: _all_current(js, DOCUMENTS_STREAM.name))

        store = await ensure_object_store(js, OBJECT_BUCKET)
        settings = await ensure_kv(js, "settings")
        for stream in (f"OBJ_{OBJECT_BUCKET}", "KV_settings"):  # a new stream has no leader for a moment
            await eventually(f"{stream} replicas current", lambda stream=stream: _all_current(js, stream))
        blob = os.urandom(3 * 1024 * 1024 + 17)
        writer = ObjectWriter(store, "original-1")
        await writer.write(blob)
        await writer.close()
        await settings.put("documents", b'{"provider": "builtin"}')
        for i in range(10):
            await js.publish(SUBJECT, f"event {i}".encode(), headers={Header.MSG_ID: f"doc-{i}"})
        assert (await js.stream_info(f"OBJ_{OBJECT_BUCKET}")).config.num_replicas == 3
        assert (await js.stream_info("KV_settings")).config.num_replicas == 3

        # A service as `atrium up` starts one, given the cluster as a comma-separated NATS_URL.
        service = Service(
            ServiceSettings(
                name="ai",
                nats_url=",".join(cluster.servers),
                nats_login=NatsLogin("ai", cluster.password("ai")),
            ),
            verify_tokens=False,
        )
        await service.start()
        try:
            # Its subscription reaches the other nodes over the routes a moment after it started.
            health = await eventually("the service answering", lambda: call(nc, AI_HEALTH, timeout=5))
            assert health.status == "ok"

            leader = (await js.stream_info(DOCUMENTS_STREAM.name)).cluster.leader
            assert leader in cluster.procs
            cluster.kill(leader)
            await _nothing_lost_and_writes_go_on(js, leader, blob)
            # The service answers through a surviving node (it reconnected if its own node was the one).
            health = await eventually("the service answering", lambda: call(nc, AI_HEALTH, timeout=5))
            assert health.status == "ok"
            killed_port = next(n.client_port for n in cluster.nodes if n.name == leader)
            assert service.nc.connected_url.port != killed_port
        finally:
            await service.stop()
    finally:
        await nc.close()


async def _nothing_lost_and_writes_go_on(js: Any, old_leader: str, blob: bytes) -> None:
    async def new_leader() -> bool:
        c = (await js.stream_info(DOCUMENTS_STREAM.name)).cluster
        return bool(c.leader) and c.leader != old_leader

    await eventually("a new stream leader", new_leader)
    for i in range(10, 20):
        ack = await eventually(
            "a publish after the failover",
            lambda i=i: js.publish(SUBJECT, f"event {i}".encode(), headers={Header.MSG_ID: f"doc-{i}"}),
        )
        assert not ack.duplicate
    again = await js.publish(SUBJECT, b"event 3", headers={Header.MSG_ID: "doc-3"})
    assert again.duplicate  # de-duplication survived the failover too

    sub = await js.pull_subscribe(SUBJECT, durable="cluster-test", stream=DOCUMENTS_STREAM.name)
    seen: list[bytes] = []
    while len(seen) < 20:
        for msg in await sub.fetch(20, timeout=10):
            seen.append(msg.data)
            await msg.ack()
    assert sorted(seen) == sorted(f"event {i}".encode() for i in range(20))

    async def blob_back() -> bytes:  # the object store's and the bucket's leaders may be re-elected too
        out = BytesIO()
        await (await js.object_store(OBJECT_BUCKET)).get("original-1", writeinto=out)
        return out.getvalue()

    async def setting_back() -> bytes:
        return bytes((await (await js.key_value("settings")).get("documents")).value or b"")

    assert await eventually("the blob read back", blob_back) == blob
    assert await eventually("the setting read back", setting_back) == b'{"provider": "builtin"}'


async def _all_current(js: Any, stream: str) -> bool:
    c = (await js.stream_info(stream)).cluster
    return bool(c and c.leader and c.replicas and len(c.replicas) == 2 and all(r.current for r in c.replicas))
