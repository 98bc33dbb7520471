"""Upload → ready end to end with the real workers, and live progress over server-sent events."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import CORPUS, AppUser, Stack
from tests.integration import docs_helpers as h

EXPECTED = json.loads((CORPUS / "synthetic" / "expected.json").read_text())


async def wait_for_status(
    http: httpx.AsyncClient, user: AppUser, doc_id: str, wanted: set[str], timeout_s: float = 120
) -> dict:
    body: dict = {}
    for _ in range(int(timeout_s * 5)):
        body = (await http.get(f"/documents/{doc_id}", headers=user.headers)).json()
        if body["status"] in wanted:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"document stayed {body.get('status')}: {body.get('tasks')}")


@pytest.mark.parametrize("name", ["invoice_1p.pdf", "letter_10p.pdf"])
async def test_upload_to_ready_with_the_workers(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, name: str
) -> None:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker (service 'extract') in the stack")
    final = {"ready"} if "ai" in stack.services else {"analyzing"}
    r = await h.upload(http, new_user, CORPUS / "synthetic" / name, name)
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    body = await wait_for_status(http, new_user, doc_id, final | {"failed", "needs_ocr"})
    assert body["status"] in final, body
    expected = EXPECTED[name]
    assert body["page_count"] == expected["pages"] == len(body["pages"])
    text = "\n".join(p["text"] for p in body["pages"])
    for page in expected["page_data"]:
        for line in page["lines"]:
            assert line in text, line
    if expected["kind"] == "invoice":
        rows = [row for p in body["pages"] for t in p["tables"] for row in t]
        for row in expected["page_data"][0]["table"]:
            assert row in rows, row
    assert {t["status"] for t in body["tasks"] if t["kind"] == "extract"} == {"succeeded"}
    # The extracted text is searchable.
    word = expected["page_data"][0]["lines"][1].split()[0]
    found = (await http.get("/documents", headers=new_user.headers, params={"q": word})).json()
    assert doc_id in [d["id"] for d in found["items"]]


async def test_events_stream_my_progress_only(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = await h.register_other(http)
    received: list[dict] = []

    async def listen(user: AppUser, sink: list[dict], ready: asyncio.Event) -> None:
        async with http.stream("GET", "/events", headers=user.headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in r.aiter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "progress":
                    sink.append(json.loads(line[6:]))
                    return

    mine_ready, other_ready = asyncio.Event(), asyncio.Event()
    others: list[dict] = []
    tasks = [
        asyncio.create_task(listen(new_user, received, mine_ready)),
        asyncio.create_task(listen(other, others, other_ready)),
    ]
    await asyncio.wait_for(asyncio.gather(mine_ready.wait(), other_ready.wait()), 10)
    d = (await h.create(stack, new_user, "live.pdf")).document
    await asyncio.wait_for(tasks[0], 10)
    assert received[0]["document_id"] == str(d.id) and received[0]["status"] == "queued"
    await asyncio.sleep(0.5)
    assert others == []  # nothing of mine reached the other user
    tasks[1].cancel()
