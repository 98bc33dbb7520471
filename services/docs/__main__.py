from services.kit.runner import run

from .app import create_service

run("docs", create_service)
