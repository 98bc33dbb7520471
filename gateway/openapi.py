"""`python -m gateway.openapi [--out FILE]`: the gateway's OpenAPI document as JSON, without starting anything.

The app is built by the same factory the server uses (no bus connection: the lifespan never runs), so
the document is exactly what `/api/openapi.json` serves. The web app's API types are generated from it
(`web/src/api/openapi.json`, committed; `tests/unit/test_openapi_dump.py` fails when it is stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .app import create_app
from .settings import GatewaySettings


def spec() -> dict[str, Any]:
    return create_app(GatewaySettings()).openapi()


def render(document: dict[str, Any]) -> str:
    """Stable text: the same app always gives the same bytes (a diff shows only what changed)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(path: Path, text: str) -> bool:
    """Write only on change, so a build that checks timestamps does not rebuild for nothing."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write to FILE (only if it changed) instead of stdout")
    args = parser.parse_args(argv)
    text = render(spec())
    if args.out is None:
        sys.stdout.write(text)
    else:
        write(args.out, text)


if __name__ == "__main__":
    main()
