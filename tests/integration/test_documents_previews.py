"""Page previews end to end: the text worker renders PNGs when first asked for, the gateway streams them
to the owner only."""

from __future__ import annotations

import asyncio
import io
from uuid import UUID

import httpx
import pytest
from nats.js.errors import ObjectNotFoundError
from PIL import Image
from sqlalchemy import select

from contracts.base import AtriumError
from contracts.documents import PREVIEW_RENDER, RenderPreviews, preview_object_name
from services.docs.tables import documents
from services.kit.client import call
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


async def test_page_preview_is_a_png_for_the_owner_only(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    doc_id = await upload_invoice(stack, http, new_user)
    body = await processed(stack, http, new_user, doc_id)
    assert body["preview_pages"] == 1
    store = await h.store(stack)
    name = preview_object_name(UUID(doc_id), UUID(body["run_id"]), 1)
    with pytest.raises(ObjectNotFoundError):  # nothing is rendered before someone looks
        await store.get_info(name)

    r = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "private" in r.headers["cache-control"]
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "PNG"
    assert 780 <= image.width <= 820, image.size
    assert image.height > image.width  # an A4/letter portrait page
    assert (await store.get_info(name)).size == len(r.content)  # kept for the next visit
    again = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    assert again.status_code == 200 and again.content == r.content

    missing = await http.get(f"/documents/{doc_id}/pages/999/preview", headers=new_user.headers)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "not_found"

    other = await h.register_other(http)
    foreign = await http.get(f"/documents/{doc_id}/pages/1/preview", headers=other.headers)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["error"]["code"] == "not_found"

    bad = await http.get(f"/documents/{doc_id}/pages/0/preview", headers=new_user.headers)
    assert bad.status_code == 422, bad.text


async def test_previews_are_rendered_in_batches_once_for_concurrent_readers(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker (service 'extract') in the stack")
    r = await h.upload(http, new_user, h.CORPUS / "synthetic" / "letter_10p.pdf", "letter_10p.pdf")
    assert r.status_code == 201, r.text
    doc_id = str(r.json()["documents"][0]["document"]["id"])
    body = await processed(stack, http, new_user, doc_id)
    assert body["preview_pages"] == 10
    run = UUID(body["run_id"])
    store = await h.store(stack)

    async def stored(page: int) -> bool:
        try:
            await store.get_info(preview_object_name(UUID(doc_id), run, page))
            return True
        except ObjectNotFoundError:
            return False

    # A browser asks for the visible pages at once: every answer is a PNG, and the batch of pages 1–8
    # is rendered once, pages 9–10 are not (nobody asked yet).
    replies = await asyncio.gather(
        *(http.get(f"/documents/{doc_id}/pages/{n}/preview", headers=new_user.headers) for n in (3, 1, 2, 4))
    )
    assert [x.status_code for x in replies] == [200] * 4, [x.text for x in replies]
    assert len({x.content for x in replies}) == 4  # four different pages

    async def eventually_stored(page: int) -> bool:
        for _ in range(300):  # an answer comes as soon as its page is stored; the batch goes on after it
            if await stored(page):
                return True
            await asyncio.sleep(0.1)
        return False

    assert await eventually_stored(8)
    assert [await stored(n) for n in range(1, 11)] == [True] * 8 + [False] * 2

    last = await http.get(f"/documents/{doc_id}/pages/10/preview", headers=new_user.headers)
    assert last.status_code == 200, last.text
    assert await stored(10) and await eventually_stored(9)
    beyond = await http.get(f"/documents/{doc_id}/pages/11/preview", headers=new_user.headers)
    assert beyond.status_code == 404, beyond.text


async def test_the_worker_renders_only_for_the_owner_token(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    """The documents service checks ownership before it asks; the worker checks the forwarded token again,
    so a request put on the bus directly cannot render someone else's document."""
    doc_id = await upload_invoice(stack, http, new_user)
    body = await processed(stack, http, new_user, doc_id)
    other = await h.register_other(http)
    async with h.owner_session(stack, new_user) as s:
        object_name = (
            await s.execute(select(documents.c.object_name).where(documents.c.id == UUID(doc_id)))
        ).scalar()
    cmd = RenderPreviews(
        document_id=UUID(doc_id),
        owner_id=UUID(new_user.id),
        run_id=UUID(body["run_id"]),
        object_name=object_name,
        page_count=1,
        page=1,
    )
    with pytest.raises(AtriumError) as refused:
        await call(stack.nc, PREVIEW_RENDER, cmd, token=other.access_token, timeout=30)
    assert refused.value.code.value == "not_found"
    with pytest.raises(AtriumError) as anonymous:
        await call(stack.nc, PREVIEW_RENDER, cmd, timeout=30)
    assert anonymous.value.code.value == "unauthenticated"
    store = await h.store(stack)
    with pytest.raises(ObjectNotFoundError):
        await store.get_info(preview_object_name(UUID(doc_id), UUID(body["run_id"]), 1))


async def test_previews_of_every_run_are_deleted_with_the_document(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    doc_id = await upload_invoice(stack, http, new_user)
    first = (await processed(stack, http, new_user, doc_id))["run_id"]
    assert (
        await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    ).status_code == 200
    r = await http.post(f"/documents/{doc_id}/reprocess", headers=new_user.headers, json={})
    assert r.status_code == 200, r.text
    second = r.json()["run_id"]
    assert (await http.get(f"/documents/{doc_id}", headers=new_user.headers)).json()["preview_pages"] == 0
    assert (await processed(stack, http, new_user, doc_id))["preview_pages"] == 1
    assert (
        await http.get(f"/documents/{doc_id}/pages/1/preview", headers=new_user.headers)
    ).status_code == 200
    store = await h.store(stack)
    names = [preview_object_name(UUID(doc_id), UUID(run), 1) for run in (first, second)]
    for name in names:
        assert (await store.get_info(name)).size > 0

    assert (await http.delete(f"/documents/{doc_id}", headers=new_user.headers)).status_code == 204
    for name in names:
        with pytest.raises(ObjectNotFoundError):
            await store.get_info(name)
