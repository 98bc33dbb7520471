"""Share links for people without an account: the file or the page previews (never both), expiring,
revocable, optionally with a password; unguessable and stored hashed; every failure answers the same;
every use is an audit entry the owner sees; visitors are rate limited per IP address."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select, update

from contracts import AtriumError
from contracts import sharing as api
from services.docs.access import as_system
from services.docs.handlers import links
from services.docs.handlers.common import DocsDeps
from services.docs.tables import rate_limits, share_links
from services.kit.client import call
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh

GONE = "This link does not work: it may have expired or been revoked, or the password is wrong."


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


@pytest_asyncio.fixture(autouse=True)
async def fresh_limits(stack: Stack) -> None:
    """Each test is one visitor starting afresh (all tests come from 127.0.0.1)."""
    if "docs" in stack.services:
        await forget_visitors(stack)


async def forget_visitors(stack: Stack) -> None:
    """Empty the share-link visitors' windows (in the docs database, shared by every documents process)."""
    db = stack.services["docs"].deps_as(DocsDeps).db
    async with db.transaction() as s:
        await s.execute(delete(rate_limits).where(rate_limits.c.rule.in_(list(links.VISITORS.rules))))


async def make_link(http: httpx.AsyncClient, owner: AppUser, doc: uuid.UUID, **body: object) -> dict:
    r = await http.post(f"/documents/{doc}/links", headers=owner.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def refused(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert (error["code"], error["message"], error["details"]) == ("not_found", GONE, None)


async def test_a_download_link_gives_the_file_and_nothing_else(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    data = h.pdf_bytes("linked")
    doc = (await h.create(stack, new_user, "linked.pdf", data=data)).document.id
    made = await make_link(http, new_user, doc)
    token = made["token"]
    assert len(token) == 43 and len(hashlib.sha256(token.encode()).digest()) * 8 >= 128  # 256 random bits
    assert made["link"]["mode"] == "download" and not made["link"]["has_password"]
    expires = datetime.fromisoformat(made["link"]["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    async with as_system(h.deps(stack).db, "share_link", write=False) as s:
        stored = (
            await s.execute(select(share_links.c.token_hash).where(share_links.c.document_id == doc))
        ).scalar()
    assert stored == hashlib.sha256(token.encode()).digest() and token.encode() not in stored

    anonymous = httpx.AsyncClient(base_url=str(http.base_url))  # no cookie, no token
    try:
        info = await anonymous.get(f"/share-links/{token}")
        assert info.status_code == 200 and info.headers["cache-control"] == "no-store"
        assert info.headers["referrer-policy"] == "no-referrer"
        assert set(info.json()) == {"mode", "expires_at", "password_required", "document", "ticket"}
        assert info.json()["document"] == {
            "filename": "linked.pdf",
            "size": len(data),
            "page_count": None,
            "preview_pages": 0,
        }
        got = await anonymous.get(f"/share-links/{token}/file")
        assert got.status_code == 200 and got.content == data
        assert got.headers["cache-control"] == "no-store" and got.headers["referrer-policy"] == "no-referrer"
        assert got.headers["content-length"] == str(len(data))
        refused(await anonymous.get(f"/share-links/{token}/pages/1/preview"))  # a download link only
        # Nothing else of the owner's is reachable with it.
        assert (await anonymous.get(f"/documents/{doc}")).status_code == 401
    finally:
        await anonymous.aclose()

    # The owner sees every use.
    listed = (await http.get(f"/documents/{doc}/links", headers=new_user.headers)).json()["items"]
    assert len(listed) == 1 and listed[0]["active"] and listed[0]["uses"] == 2
    assert [u["action"] for u in listed[0]["recent"]] == ["downloaded", "opened"]
    assert listed[0]["recent"][0]["ip"] == "127.0.0.1"


async def test_expired_revoked_unknown_and_wrong_password_answer_alike(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    doc = (await h.create(stack, new_user, "guarded.pdf")).document.id
    locked = await make_link(http, new_user, doc, password="open sesame", mode="download")
    token = locked["token"]
    asks = await http.get(f"/share-links/{token}")
    assert asks.status_code == 200
    assert (
        asks.json()["password_required"] and asks.json()["document"] is None and asks.json()["ticket"] is None
    )
    refused(await http.get(f"/share-links/{token}/file"))  # no ticket
    refused(await http.post(f"/share-links/{token}", json={"password": "wrong"}))
    refused(await http.get(f"/share-links/{'A' * 43}"))  # unknown
    opened = await http.post(f"/share-links/{token}", json={"password": "open sesame"})
    assert opened.status_code == 200 and opened.json()["document"]["filename"] == "guarded.pdf"
    ticket = opened.json()["ticket"]
    assert (await http.get(f"/share-links/{token}/file", params={"ticket": ticket})).status_code == 200
    refused(await http.get(f"/share-links/{token}/file", params={"ticket": ticket[:-2] + "xx"}))
    other = await make_link(http, new_user, doc, password="another one")
    refused(
        await http.get(f"/share-links/{other['token']}/file", params={"ticket": ticket})
    )  # not its ticket

    # Revoked: the same answer, even with the right password and ticket.
    assert (await http.delete(f"/links/{locked['link']['id']}", headers=new_user.headers)).status_code == 204
    refused(await http.post(f"/share-links/{token}", json={"password": "open sesame"}))
    refused(await http.get(f"/share-links/{token}/file", params={"ticket": ticket}))
    # Expired: the same.
    plain = await make_link(http, new_user, doc, expires_in_days=1)
    async with as_system(h.deps(stack).db, "share_link") as s:
        await s.execute(
            update(share_links)
            .where(share_links.c.id == uuid.UUID(plain["link"]["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused(await http.get(f"/share-links/{plain['token']}"))
    # Over the bus, without a token, the same refusal.
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, api.LINK_OPEN, {"token": plain["token"]})
    assert err.value.code == "not_found" and err.value.message == GONE


async def test_only_the_owner_or_an_administrator_makes_links(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    owner, editor = await sh.person(stack, http), await sh.person(stack, http)
    doc = (await h.create(stack, owner.user, "mine.pdf")).document.id
    await sh.share(http, owner, f"documents/{doc}", "editor", email=editor.email)
    r = await http.post(f"/documents/{doc}/links", headers=await editor.headers(), json={})
    assert r.status_code == 403
    assert (await http.get(f"/documents/{doc}/links", headers=await editor.headers())).status_code == 403
    made = await make_link(http, new_admin, doc)
    assert made["link"]["created_by"] == new_admin.id
    assert (await http.get(f"/share-links/{made['token']}")).status_code == 200
    # A deactivated owner's links stop working.
    r = await http.patch(f"/admin/users/{owner.id}", headers=new_admin.headers, json={"is_active": False})
    assert r.status_code == 200, r.text
    for _ in range(100):
        r = await http.get(f"/share-links/{made['token']}")
        if r.status_code == 404:
            break
        await __import__("asyncio").sleep(0.05)
    refused(r)


async def test_visitors_are_rate_limited(stack: Stack, http: httpx.AsyncClient, new_user: AppUser) -> None:
    doc = (await h.create(stack, new_user, "limited.pdf")).document.id
    good = await make_link(http, new_user, doc)
    for _ in range(links.VISITORS.rules["link_fail_ip"].limit):
        refused(await http.get(f"/share-links/{'B' * 43}"))
    r = await http.get(f"/share-links/{good['token']}")  # even a good link, from that address, for a while
    assert r.status_code == 429 and r.json()["error"]["details"]["retry_after_s"] > 0


async def test_a_preview_link_shows_pages_rendered_for_its_visitor(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    if "extract" not in stack.services:
        pytest.skip("needs the text worker")
    r = await h.upload(http, new_user, h.INVOICE, "invoice.pdf")
    doc = r.json()["documents"][0]["document"]["id"]
    for _ in range(600):
        body = (await http.get(f"/documents/{doc}", headers=new_user.headers)).json()
        if body["preview_pages"] >= 1:
            break
        await __import__("asyncio").sleep(0.1)
    assert body["preview_pages"] >= 1
    made = await make_link(http, new_user, doc, mode="preview")
    info = (await http.get(f"/share-links/{made['token']}")).json()
    assert info["mode"] == "preview" and info["document"]["preview_pages"] >= 1
    page = await http.get(f"/share-links/{made['token']}/pages/1/preview")  # nobody rendered it before
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")
    refused(await http.get(f"/share-links/{made['token']}/file"))  # a preview link only
    beyond = info["document"]["preview_pages"] + 1
    assert (await http.get(f"/share-links/{made['token']}/pages/{beyond}/preview")).status_code == 404
    uses = (await http.get(f"/documents/{doc}/links", headers=new_user.headers)).json()["items"][0]["recent"]
    assert [u["action"] for u in uses][-2:] == ["previewed", "opened"]
