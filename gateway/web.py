"""Serves the built web app (web/dist) with a single-page-app fallback, or a placeholder before it is built."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException

# The app loads only its own scripts (no inline script; see web/public/theme-init.js). Inline *style
# attributes* stay allowed because the Radix primitives position popovers with them; blob: images are
# the avatar preview before upload.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HTML_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP}

PLACEHOLDER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Atrium</title></head>
<body><main><h1>Atrium</h1><p>The API is running: see <a href="/api/docs">/api/docs</a>.
The web app has not been built yet (<code>./atrium up</code> builds it).</p></main></body></html>"""


def mount(app: FastAPI, dist: Path) -> None:
    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str, request: Request):  # type: ignore[no-untyped-def]
        if path.startswith("api/"):
            raise HTTPException(404)
        root = dist.resolve()
        if root.is_dir():
            candidate = (root / path).resolve()
            if path and candidate.is_file() and root in candidate.parents:
                if candidate.suffix == ".html":
                    return FileResponse(candidate, headers=HTML_HEADERS)
                cache = "public, max-age=31536000, immutable" if "/assets/" in f"/{path}" else "no-cache"
                return FileResponse(candidate, headers={"Cache-Control": cache})
            index = root / "index.html"
            if index.is_file():
                return FileResponse(index, headers=HTML_HEADERS)
        return HTMLResponse(PLACEHOLDER, headers=HTML_HEADERS)
