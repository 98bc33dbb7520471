"""`python -m services.<name>`: configure logging, build the service from the environment, run until signalled."""

from __future__ import annotations

from collections.abc import Callable

from .bus import Service
from .config import ServiceSettings
from .logging import setup_logging


async def run(name: str, factory: Callable[[ServiceSettings], Service]) -> None:
    settings = ServiceSettings.from_env(name)
    setup_logging(name, settings.log_level)
    await factory(settings).run_forever()
