"""`python -m gateway --port N`: the gateway under uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from services.kit.logging import setup_logging

from .app import create_app
from .settings import GatewaySettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    settings = GatewaySettings.from_env()
    setup_logging("gateway")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


main()
