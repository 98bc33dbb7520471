"""The load generator of bench_hotpath, run as its own process so its CPU shows apart from the servers'.

Kept light and the same for every design, because on a 2-core machine the client competes with the
servers: uvloop, one keep-alive HTTP/1.1 connection per client written as a bare asyncio protocol
(a prepared request, a response read up to its Content-Length), or for the bus one NATS connection
shared by all clients sending the prepared Rpc with `nc.request`. Nothing is parsed beyond the status.

    python -m bench.loadgen --target http://127.0.0.1:8080/api/v1/auth/me --tokens tokens.json \
        --clients 32 --seconds 5 [--warmup 1]
    python -m bench.loadgen --target nats://127.0.0.1:4222 --subject auth.user.me ...  (NATS_USER/NATS_PASSWORD)

Prints a JSON line when the warm-up is over, then one with the requests, errors, elapsed and CPU
seconds of the measured window and every latency in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import uvloop

Request = Callable[[], Awaitable[bool]]  # one request; True when it succeeded


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection that sends a fixed request and waits for its whole response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._done(exc=RuntimeError("response without content-length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
        total = end + 4 + length
        if len(self.buf) >= total:
            status = int(head[9:12])
            del self.buf[:total]
            self._done(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done(exc=exc or ConnectionError("closed by the server"))

    def _done(self, status: int = 0, exc: BaseException | None = None) -> None:
        if self.waiter and not self.waiter.done():
            if exc:
                self.waiter.set_exception(exc)
            else:
                self.waiter.set_result(status)

    async def send(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def http_requests(url: str, tokens: list[str], clients: int) -> list[Request]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    out: list[Request] = []
    for i in range(clients):
        raw = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {tokens[i % len(tokens)]}\r\n\r\n"
        ).encode()
        _, conn = await loop.create_connection(HttpConnection, host, port)

        async def one(conn: HttpConnection = conn, raw: bytes = raw) -> bool:
            return await conn.send(raw) == 200

        out.append(one)
    return out


async def bus_requests(url: str, subject: str, tokens: list[str], clients: int) -> list[Request]:
    import nats

    login = {}
    if os.environ.get("NATS_PASSWORD"):
        user = os.environ["NATS_USER"]
        login = {"user": user, "password": os.environ["NATS_PASSWORD"], "inbox_prefix": f"_INBOX.{user}"}
    nc = await nats.connect(url, **login)  # type: ignore[arg-type]
    out: list[Request] = []
    for i in range(clients):
        headers = {"authorization": f"Bearer {tokens[i % len(tokens)]}", "x-request-id": os.urandom(8).hex()}

        async def one(headers: dict[str, str] = headers) -> bool:
            msg = await nc.request(subject, b"{}", timeout=10, headers=headers)
            return msg.data.startswith(b'{"ok":true')

        out.append(one)
    return out


async def drive(requests: list[Request], seconds: float, warmup: float) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    measuring = told = False
    stop_at = time.perf_counter() + warmup + seconds

    async def client(one: Request) -> None:
        nonlocal errors, told
        while True:
            t = time.perf_counter()
            if t >= stop_at:
                return
            try:
                ok = await one()
            except Exception as exc:
                ok = False
                if not told:  # the first error says what is wrong; the count says how often
                    print(f"loadgen: {exc!r}", file=sys.stderr, flush=True)
                    told = True
            if measuring:
                if ok:
                    latencies.append((time.perf_counter() - t) * 1000)
                else:
                    errors += 1

    tasks = [asyncio.ensure_future(client(r)) for r in requests]
    await asyncio.sleep(warmup)
    measuring = True
    print(json.dumps({"measuring": True}), flush=True)  # the caller samples the servers' CPU now
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*tasks)
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "latencies": [round(x, 3) for x in latencies],
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    tokens = json.loads(open(args.tokens).read())
    if args.target.startswith("nats://"):
        requests = await bus_requests(args.target, args.subject, tokens, args.clients)
    else:
        requests = await http_requests(args.target, tokens, args.clients)
    return await drive(requests, args.seconds, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(prog="loadgen")
    parser.add_argument("--target", required=True)
    parser.add_argument("--subject", default="auth.user.me")
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
