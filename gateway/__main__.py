"""`python -m gateway --port N`: the gateway under uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn

from services.kit.logging import setup_logging

from .app import create_app
from .settings import GatewaySettings

# uvloop and httptools (both in the lock) instead of asyncio's loop and h11: less CPU per request.
# The hot-path benchmark runs its baselines under the same settings (bench/hotpath_apps.py).
SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
    # Idle keep-alive connections stay open 30 s (uvicorn's default is 5): a client that sends its next request
    # as the server closes an idle connection sees it reset. Under load, with users pausing 1–3 s, the 5 s timer
    # of a busy event loop raced requests already on the wire (bench_load: "Remote end closed connection").
    "timeout_keep_alive": 30,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    settings = GatewaySettings.from_env()
    setup_logging("gateway", os.environ.get("LOG_LEVEL", "INFO"))
    uvicorn.run(create_app(settings), host=args.host, port=args.port, **SERVER_OPTIONS)


if __name__ == "__main__":
    main()
