import asyncio

from services.kit.runner import run

from .app import create_service

asyncio.run(run("docs", create_service))
