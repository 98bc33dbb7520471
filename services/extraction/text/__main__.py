from services.kit.runner import run

from .app import create_service

if __name__ == "__main__":
    run("extract", create_service)
