"""Through the gateway with every service running: uploads of scans, the documents' states as a user sees
them, live progress over `/events`, and the OCR settings as an administrator changes them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.extraction.text.handlers import Deps
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h

SETTINGS = "/apps/documents/settings"
TERMINAL = {"ready", "failed", "needs_ocr"}
DEFAULT_OCR = {
    "ocr_mode": "scanned",
    "ocr_languages": ["eng"],
    "ocr_provider": "tesseract",
    "ocr_max_pages": 500,
}


def needs_workers(stack: Stack) -> None:
    missing = {"extract", "ai", "docs"} - set(stack.services)
    if missing:
        pytest.skip(f"needs the whole pipeline in the stack (missing {', '.join(sorted(missing))})")


async def upload(http: httpx.AsyncClient, user: AppUser, path: Path | bytes, name: str, media: str) -> str:
    r = await h.upload(http, user, path, name, media)
    assert r.status_code == 201, r.text
    return str(r.json()["documents"][0]["document"]["id"])


async def settled(
    http: httpx.AsyncClient, user: AppUser, doc_id: str, timeout_s: float = 300.0
) -> dict[str, Any]:
    """The document once its current run ended (ready, needs_ocr or failed)."""
    last: dict[str, Any] = {}

    async def poll() -> dict[str, Any]:
        while True:
            r = await http.get(f"/documents/{doc_id}", headers=user.headers)
            # A busy machine may answer "try again" (503/504 with Retry-After) while polling; anything else
            # that is not the document is a real failure.
            if r.status_code not in (503, 504):
                assert r.status_code == 200, r.text
                last.update(r.json())
                if last["status"] in TERMINAL:
                    return last
            await asyncio.sleep(0.25)

    try:
        return await asyncio.wait_for(poll(), timeout_s)
    except TimeoutError:
        raise AssertionError(
            f"the document did not settle: {last.get('status')} {last.get('tasks')}"
        ) from None


@contextlib.asynccontextmanager
async def progress_events(http: httpx.AsyncClient, user: AppUser) -> AsyncIterator[list[dict[str, Any]]]:
    """Every `progress` event the user's `/events` stream delivers while the block runs."""
    received: list[dict[str, Any]] = []
    connected = asyncio.Event()

    async def listen() -> None:
        async with http.stream("GET", "/events", headers=user.headers, timeout=None) as r:
            assert r.status_code == 200, r.status_code
            event = ""
            async for line in r.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "progress":
                    received.append(json.loads(line[6:]))

    task = asyncio.create_task(listen())
    await asyncio.wait_for(connected.wait(), 10)
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def set_ocr(stack: Stack, http: httpx.AsyncClient, admin: AppUser, **changes: Any) -> dict[str, Any]:
    """Change the settings as an administrator and wait until the text worker follows them."""
    r = await http.patch(SETTINGS, json=changes, headers=admin.headers)
    assert r.status_code == 200, r.text
    await worker_sees(stack, r.json())
    return r.json()  # type: ignore[no-any-return]


async def worker_sees(stack: Stack, settings: dict[str, Any], timeout_s: float = 10.0) -> None:
    """Until the text worker's watched settings have the given OCR mode, languages, provider, page limit,
    vision model and request timeout."""
    deps = stack.services["extract"].deps_as(Deps)
    keys = ("mode", "languages", "provider", "max_pages")
    want = {key: settings[f"ocr_{key}"] for key in keys}
    want["request_timeout_s"] = settings["request_timeout_s"]

    def seen() -> dict[str, Any]:
        options = deps.ocr_options()
        got = {key: list(v) if isinstance(v := getattr(options, key), tuple) else v for key in keys}
        return {**got, "request_timeout_s": options.request_timeout_s}

    async def poll() -> None:
        while True:  # the worker follows the settings bucket in a task of its own
            if seen() == want:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout_s)
