"""Prometheus metrics of every process, and how Prometheus finds them.

Each process (a service, a worker, the gateway; the test harness's one process runs them all) serves
its metrics with prometheus_client on 127.0.0.1, on a port the kernel picks, and writes where it
listens into `<data>/metrics/targets/<process>.json` (Prometheus's file-based discovery). A restarted
process overwrites its own file; `atrium up` empties the folder at start. Nothing listens beyond this
machine and nothing secret is in a metric, so the endpoint needs no token (docs/architecture.md). Under
compose.yaml each process listens on a fixed port of the backend network instead, and the `prometheus`
container finds them by DNS (infra/prometheus/compose.yml).

Every series carries `service` (the service or `gateway`), so the services of one process stay apart.
Transport metrics are here (the bus and the gateway observe them); a domain's own metrics live with it
(services/auth/metrics.py, services/extraction/metrics.py, services/docs/metrics.py).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

__all__ = ["Counter", "Gauge", "Histogram", "expose"]  # domains define their metrics with these

log = logging.getLogger("atrium.metrics")

TARGETS_DIR = Path("metrics") / "targets"  # under the data directory

# Request latencies: a cheap Rpc answers in about a millisecond, an upload or a search may take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RPC_REQUESTS = Counter(
    "atrium_rpc_requests_total",
    "Bus requests a service answered, by subject and outcome (ok or the error code).",
    ["service", "subject", "outcome"],
)
RPC_SECONDS = Histogram(
    "atrium_rpc_duration_seconds",
    "Time a service took to answer a bus request.",
    ["service", "subject"],
    buckets=LATENCY_BUCKETS,
)
RPC_QUEUE_SECONDS = Histogram(
    "atrium_rpc_queue_seconds",
    "Time from a caller sending a bus request (its x-sent-at) to the service's handler taking it: the NATS hop,"
    " the subscription's queue and the wait for one of the service's slots. Across machines it includes their"
    " clocks' difference.",
    ["service", "subject"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_HANDLED = Counter(
    "atrium_events_handled_total",
    "Events a durable consumer handled, by outcome: ok, retry (redelivered later), gave_up, malformed.",
    ["service", "subject", "outcome"],
)
EVENTS_OVERDUE = Counter(
    "atrium_events_overdue_total",
    "Events whose handler still ran, with no heartbeat, when the consumer's ack wait ended (JetStream redelivers"
    " them meanwhile; a handler that never ends stops its consumer in that process).",
    ["service", "subject"],
)
EVENT_SECONDS = Histogram(
    "atrium_event_duration_seconds",
    "Time a consumer's handler took for one event.",
    ["service", "subject"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_PENDING = Gauge(
    "atrium_consumer_pending_messages",
    "Messages of a durable consumer not yet delivered (the lag).",
    ["service", "consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "atrium_consumer_ack_pending_messages",
    "Messages delivered to a durable consumer and not yet acknowledged (in work).",
    ["service", "consumer"],
)
CONSUMER_REDELIVERED = Gauge(
    "atrium_consumer_redelivered_messages",
    "Messages of a durable consumer delivered more than once and still unacknowledged.",
    ["service", "consumer"],
)
DB_POOL = Gauge(
    "atrium_db_pool_connections",
    "Connections of a service's database pool, by state (in_use, idle, size).",
    ["service", "state"],
)
HTTP_REQUESTS = Counter(
    "atrium_http_requests_total",
    "HTTP requests the gateway answered, by route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "atrium_http_request_duration_seconds",
    "Time from a request's arrival at the gateway to its response's first byte.",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)

# A pause of the whole process: every request in hand waits it out, whatever its own work.
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GC_PAUSE_SECONDS = Histogram(
    "atrium_gc_pause_seconds",
    "Time Python's cyclic garbage collector stopped the process, by generation (2: the full collection).",
    ["process", "generation"],
    buckets=PAUSE_BUCKETS,
)
LOOP_LAG_SECONDS = Histogram(
    "atrium_event_loop_lag_seconds",
    "How late the process's event loop woke a timer: what any ready task waited for the loop at that moment"
    " (CPU-bound work in a handler, a collector pause, a starved process).",
    ["process"],
    buckets=PAUSE_BUCKETS,
)
LOOP_LAG_EVERY_S = 0.25

_served: dict[str, Any] = {}
_lock = threading.Lock()
_watched: dict[str, Any] = {}


def process_name(default: str) -> str:
    """The name `atrium up` gives this process (`extract-2` for a replica), else `default`."""
    return os.environ.get("ATRIUM_PROCESS") or default


def expose(name: str, data_dir: Path) -> int:
    """Serve this process's metrics (once per process) and register it for discovery; returns the port.

    `ATRIUM_METRICS_PORT` fixes the port (0 or unset: any free one); `ATRIUM_METRICS=off` serves none.
    `ATRIUM_METRICS_HOST` (compose.yaml: 0.0.0.0 on the backend network, where Prometheus finds each container
    by its service's name) listens beyond 127.0.0.1 and writes no discovery file."""
    if os.environ.get("ATRIUM_METRICS", "").lower() in ("off", "0", "false"):
        return 0
    host = os.environ.get("ATRIUM_METRICS_HOST", "")
    with _lock:
        if "port" not in _served:
            server, _thread = start_http_server(
                int(os.environ.get("ATRIUM_METRICS_PORT", "0")), addr=host or "127.0.0.1", registry=REGISTRY
            )
            _served["port"] = server.server_port
            _served["name"] = process_name(name)
            _served["dir"] = (data_dir / TARGETS_DIR).resolve()
            if not host:
                register_target(_served["dir"], _served["name"], _served["port"])
            log.info("metrics on %s:%s/metrics", host or "127.0.0.1", _served["port"])
        return int(_served["port"])


def watch_runtime(name: str) -> None:
    """After start-up, in the running event loop: settle the heap, time the collector's pauses (once per
    process) and the loop's lag (once per loop).

    Start-up leaves hundreds of thousands of long-lived objects (modules, models, SQLAlchemy's metadata) that a
    full collection would walk again and again under load (measured: 130–340 ms each in the documents
    service); `gc.freeze()` moves them out of the collector's sight, so a full collection walks only what
    was made since."""
    process = process_name(name)
    loop = asyncio.get_running_loop()
    with _lock:
        if "gc" not in _watched:
            _watched["gc"] = True
            gc.collect()
            gc.freeze()
            gc.callbacks.append(_gc_timer(process))
        loops = _watched.setdefault("loops", weakref.WeakSet())
        if loop in loops:
            return
        loops.add(loop)
    # A timer chain, not a task: nothing is left pending when a loop closes (the test harness's loops do).
    due = loop.time() + LOOP_LAG_EVERY_S
    loop.call_at(due, _tick, loop, LOOP_LAG_SECONDS.labels(process), due)


def _gc_timer(process: str) -> Callable[[str, dict[str, int]], None]:
    started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            started[generation] = time.perf_counter()
        elif generation in started:
            GC_PAUSE_SECONDS.labels(process, str(generation)).observe(
                time.perf_counter() - started.pop(generation)
            )

    return on_gc


def _tick(loop: asyncio.AbstractEventLoop, lag: Any, due: float) -> None:
    now = loop.time()
    lag.observe(max(0.0, now - due))
    loop.call_at(now + LOOP_LAG_EVERY_S, _tick, loop, lag, now + LOOP_LAG_EVERY_S)


def register_target(folder: Path, name: str, port: int) -> bool:
    """Write the discovery file; a process whose data directory is read-only (compose mounts its
    credentials read-only) keeps serving its metrics and says that discovery needs its address."""
    try:
        write_target(folder, name, port)
        return True
    except OSError as exc:
        log.warning(
            "metrics served on 127.0.0.1:%s, but %s is not writable (%s): configure this address in "
            "Prometheus, or set ATRIUM_METRICS_PORT to a fixed port",
            port,
            folder,
            exc.strerror or exc,
        )
        return False


def write_target(folder: Path, name: str, port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"process": name}}]))
    tmp.replace(folder / f"{name}.json")  # Prometheus never reads half a file


def observe_rpc(service: str, subject: str, outcome: str, seconds: float) -> None:
    # The duration first: a scrape that sees the request counted sees its duration too.
    RPC_SECONDS.labels(service, subject).observe(seconds)
    RPC_REQUESTS.labels(service, subject, outcome).inc()


def observe_event(service: str, subject: str, outcome: str, seconds: float | None = None) -> None:
    if seconds is not None:  # the duration first, as in observe_rpc
        EVENT_SECONDS.labels(service, subject).observe(seconds)
    EVENTS_HANDLED.labels(service, subject, outcome).inc()


def watch_pool(service: str, engine: Any) -> None:
    """The pool's connections, read when Prometheus scrapes (SQLAlchemy's QueuePool counters)."""
    pool = engine.sync_engine.pool
    DB_POOL.labels(service, "in_use").set_function(lambda: pool.checkedout())
    DB_POOL.labels(service, "idle").set_function(lambda: pool.checkedin())
    DB_POOL.labels(service, "size").set_function(lambda: pool.size())


async def record_consumers(service: str, js: Any, consumers: list[tuple[str, str]]) -> None:
    """Lag, in-work and redelivered counts of the service's durable consumers ((stream, durable) pairs)."""
    for stream, durable in consumers:
        info = await js.consumer_info(stream, durable)
        CONSUMER_PENDING.labels(service, durable).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(service, durable).set(info.num_ack_pending or 0)
        CONSUMER_REDELIVERED.labels(service, durable).set(info.num_redelivered or 0)
