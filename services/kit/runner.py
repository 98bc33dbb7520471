"""`python -m services.<name>`: configure logging, build the service from the environment, run until signalled.

On uvloop, like the gateway (`gateway.__main__.SERVER_OPTIONS`): its event loop spends less CPU per
socket event than asyncio's, and a cheap Rpc is mostly socket events (a NATS message in, a PostgreSQL
round trip, a NATS message out). The test harness runs the services in-process on pytest-asyncio's loop.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .bus import Service
from .config import ServiceSettings
from .logging import setup_logging


async def serve(name: str, factory: Callable[[ServiceSettings], Service]) -> None:
    settings = ServiceSettings.from_env(name)
    setup_logging(name, settings.log_level)
    await factory(settings).run_forever()


def run(name: str, factory: Callable[[ServiceSettings], Service]) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop where it exists (not on Windows: plain asyncio there)."""
    if sys.platform == "win32":
        import asyncio

        asyncio.run(serve(name, factory))
        return
    import uvloop

    uvloop.run(serve(name, factory))
