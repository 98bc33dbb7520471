"""The whole pipeline with the real workers: upload a PDF over HTTP → text worker → AI worker → documents
service; fields carry their provenance, and a user's edit survives a re-run with another provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS
from tests.fakes_llm.server import FakeLLM
from tests.integration import docs_helpers as h

SETTINGS = "/apps/documents/settings"


async def settled(
    http: httpx.AsyncClient, user: AppUser, doc_id: str, run_id: str | None = None, timeout: float = 90.0
) -> dict[str, Any]:
    """The document once its run (the given one, or the current) is ready, failed or needs OCR."""
    last: dict[str, Any] = {}

    async def poll() -> dict[str, Any]:
        while True:
            last.update((await http.get(f"/documents/{doc_id}", headers=user.headers)).json())
            if last["status"] in ("ready", "failed", "needs_ocr") and (
                run_id is None or last["run_id"] == run_id
            ):
                return last
            await asyncio.sleep(0.2)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"the document did not settle: {last.get('status')} {last.get('tasks')}"
        ) from None


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(model="local-llm-2").start()
    yield server
    await server.stop()


async def test_upload_to_fields_and_user_edit_survives_a_rerun(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, new_admin: AppUser, fake: FakeLLM
) -> None:
    r = await http.patch(SETTINGS, json=BUILTIN_DEFAULTS, headers=new_admin.headers)
    assert r.status_code == 200, r.text
    try:
        r = await h.upload(http, new_user, h.INVOICE, "invoice.pdf")
        assert r.status_code == 201, r.text
        doc_id = r.json()["documents"][0]["document"]["id"]
        doc = await settled(http, new_user, doc_id)
        assert doc["status"] == "ready", doc
        fields = doc["fields"]
        assert fields["invoice_number"]["value"] == "INV-2091827"
        assert (
            fields["invoice_number"]["source"] == "model"
            and fields["invoice_number"]["provider"] == "builtin"
        )
        assert (
            doc["total_amount"] == "200715.28"
            and doc["currency"] == "USD"
            and doc["document_type"] == "invoice"
        )
        analyze = [t for t in doc["tasks"] if t["kind"] == "analyze"]
        assert analyze and analyze[0]["status"] == "succeeded" and analyze[0]["model"] == "builtin-rules-1"

        r = await http.patch(
            f"/documents/{doc_id}",
            headers=new_user.headers,
            json={"fields": {"sender": "Blue Harbour (corrected)"}},
        )
        assert r.status_code == 200, r.text

        r = await http.patch(
            SETTINGS,
            json={"provider": "openai_compatible", "base_url": fake.base_url + "/v1", "model": "local-llm-2"},
            headers=new_admin.headers,
        )
        assert r.status_code == 200, r.text
        r = await http.post(f"/documents/{doc_id}/reprocess", headers=new_user.headers)
        assert r.status_code == 200, r.text
        doc = await settled(http, new_user, doc_id, run_id=r.json()["run_id"])
        assert doc["status"] == "ready", doc
        assert doc["fields"]["sender"]["value"] == "Blue Harbour (corrected)"
        assert doc["fields"]["sender"]["source"] == "user"
        assert doc["fields"]["invoice_number"]["provider"] == "openai_compatible"
        assert doc["fields"]["invoice_number"]["model"] == "local-llm-2"
        assert len(fake.hits("/v1/chat/completions")) == 1
        latest = max(
            (t for t in doc["tasks"] if t["kind"] in ("analyze", "reprocess") and t["model"]),
            key=lambda t: t["created_at"],
        )
        assert (
            latest["provider"] == "openai_compatible" and latest["tokens_in"] and latest["tokens_out"] == 42
        )
    finally:
        await http.patch(SETTINGS, json=BUILTIN_DEFAULTS, headers=new_admin.headers)
