"""Page previews end to end: the text worker renders PNGs, the gateway streams them to the owner only."""

from __future__ import annotations

import io
from uuid import UUID

import httpx
import pytest
from nats.js.errors import ObjectNotFoundError
from PIL import Image

from contracts.documents import preview_object_name
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration.test_documents_pipeline import wait_for_status


async def processed(stack: Stack, http: httpx.AsyncClient, user: AppUser, doc_id: str) -> dict:
    # With the AI worker, "analyzing" may come before the docs service recorded the extraction.
    final = {"ready"} if "ai" in stack.services else {"analyzing"}
    body = await wait_for_status(http, user, doc_id, final | {"failed", "needs_ocr"})
    assert body["status"] in final, body
    return body


async def upload_invoice(stack: Stack, http: httpx.AsyncClient, user: AppUser) -> str:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker (service 'extract') in the stack")
    r = await h.upload(http, user, h.INVOICE, "invoice_1p.pdf")
    assert r.status_code == 201, r.text
    return str(r.json()["documents"][0]["document"]["id"])


async def test_page_preview_is_a_png_for_the_owner_only(stack: Stack, http: httpx.AsyncClient,
                                                         new_user: AppUser) -> None:
    doc_id = await upload_invoice(stack, http, new_user)
    body = await processed(stack, http, new_user, doc_id)
    assert body["preview_pages"] == 1

    r = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "private" in r.headers["cache-control"]
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "PNG"
    assert 780 <= image.width <= 820, image.size
    assert image.height > image.width  # an A4/letter portrait page

    missing = await http.get(f"/documents/{doc_id}/pages/999/preview", headers=new_user.headers)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "not_found"

    other = await h.register_other(http)
    foreign = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=other.headers)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["error"]["code"] == "not_found"

    bad = await http.get(f"/documents/{doc_id}/pages/0/preview", headers=new_user.headers)
    assert bad.status_code == 422, bad.text


async def test_previews_of_every_run_are_deleted_with_the_document(stack: Stack, http: httpx.AsyncClient,
                                                                   new_user: AppUser) -> None:
    doc_id = await upload_invoice(stack, http, new_user)
    first = (await processed(stack, http, new_user, doc_id))["run_id"]
    r = await http.post(f"/documents/{doc_id}/reprocess", headers=new_user.headers, json={})
    assert r.status_code == 200, r.text
    second = r.json()["run_id"]
    assert (await http.get(f"/documents/{doc_id}", headers=new_user.headers)).json()["preview_pages"] == 0
    assert (await processed(stack, http, new_user, doc_id))["preview_pages"] == 1
    store = await h.store(stack)
    names = [preview_object_name(UUID(doc_id), UUID(run), 1) for run in (first, second)]
    for name in names:
        assert (await store.get_info(name)).size > 0

    assert (await http.delete(f"/documents/{doc_id}", headers=new_user.headers)).status_code == 204
    for name in names:
        with pytest.raises(ObjectNotFoundError):
            await store.get_info(name)
