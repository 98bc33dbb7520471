"""Sharing inside Atrium, end to end over HTTP and the bus: documents and categories shared with people and
groups, roles, revocation and group changes effective on the next request, "shared with me", personal
categories, and what the owner sees of who has access."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contracts import AtriumError
from contracts import docs_api as api
from services.kit.client import call
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


async def test_a_shared_document_is_listed_found_and_read_with_a_badge(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    doc = await h.ready_document(stack, owner.user, "shared.pdf", "quarterly zebrafinch report")
    mine = await h.ready_document(stack, reader.user, "own.pdf", "my own zebrafinch notes")
    assert doc not in {uuid.UUID(d["id"]) for d in await sh.listed(http, reader)}

    await sh.share(http, owner, f"documents/{doc}", "viewer", email=reader.email.upper())
    items = {d["id"]: d for d in await sh.listed(http, reader)}
    assert {str(doc), str(mine)} <= set(items)
    assert items[str(doc)]["role"] == "viewer"
    assert items[str(doc)]["shared_by"] == {"id": owner.id, "email": owner.email, "name": None}
    assert items[str(mine)]["role"] == "owner" and items[str(mine)]["shared_by"] is None
    # Search and the "shared with me" filter find it too; "mine" does not.
    found = await sh.listed(http, reader, q="zebrafinch")
    assert {d["id"] for d in found} == {str(doc), str(mine)}
    assert [d["id"] for d in await sh.listed(http, reader, scope="shared")] == [str(doc)]
    assert str(doc) not in {d["id"] for d in await sh.listed(http, reader, scope="mine")}
    counts = (await http.get("/documents/counts", headers=await reader.headers())).json()
    shared_counts = (
        await http.get("/documents/counts", params={"scope": "shared"}, headers=await reader.headers())
    ).json()
    assert counts["total"] == 2 and shared_counts["total"] == 1
    detail = (await http.get(f"/documents/{doc}", headers=await reader.headers())).json()
    assert detail["role"] == "viewer" and detail["pages"][0]["text"] == "quarterly zebrafinch report"
    assert (await http.get(f"/documents/{doc}/file", headers=await reader.headers())).status_code == 200
    # The same over the bus, with the reader's token.
    page = await call(stack.nc, api.DOCUMENT_LIST, {"scope": "shared"}, token=await reader.token())
    assert [d.id for d in page.items] == [doc] and page.items[0].shared_by.id == uuid.UUID(owner.id)


async def test_revoking_and_changing_a_role_apply_on_the_next_request(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    doc = (await h.create(stack, owner.user, "roles.pdf")).document.id
    share = await sh.share(http, owner, f"documents/{doc}", "viewer", email=reader.email)
    edit = {"title": "Renamed by a sharee"}
    r = await http.patch(f"/documents/{doc}", headers=await reader.headers(), json=edit)
    assert r.status_code == 403 and "editor" in r.json()["error"]["message"]
    again = await sh.share(http, owner, f"documents/{doc}", "editor", email=reader.email)
    assert again["id"] == share["id"] and again["role"] == "editor"  # sharing again changes the role
    r = await http.patch(f"/documents/{doc}", headers=await reader.headers(), json=edit)
    assert (
        r.status_code == 200 and r.json()["title"] == "Renamed by a sharee" and r.json()["role"] == "editor"
    )
    # Only the owner deletes or re-shares.
    assert (await http.delete(f"/documents/{doc}", headers=await reader.headers())).status_code == 403
    r = await http.post(
        f"/documents/{doc}/shares", headers=await reader.headers(), json={"email": owner.email}
    )
    assert r.status_code == 403

    r = await http.delete(f"/shares/{share['id']}", headers=await owner.headers())
    assert r.status_code == 204
    assert (await http.get(f"/documents/{doc}", headers=await reader.headers())).status_code == 404
    assert str(doc) not in {d["id"] for d in await sh.listed(http, reader)}
    with pytest.raises(AtriumError) as gone:
        await call(stack.nc, api.DOCUMENT_GET, {"id": str(doc)}, token=await reader.token())
    assert gone.value.code == "not_found"
    assert (await http.delete(f"/shares/{share['id']}", headers=await owner.headers())).status_code == 404


async def test_a_group_share_follows_membership_at_once(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    owner, member = await sh.person(stack, http), await sh.person(stack, http)
    gid = await sh.group(http, new_admin, member)
    doc = (await h.create(stack, owner.user, "group.pdf")).document.id
    await sh.share(http, owner, f"documents/{doc}", "editor", group_id=gid)
    r = await http.get(f"/documents/{doc}", headers=await member.headers())
    assert r.status_code == 200 and r.json()["role"] == "editor"

    r = await http.delete(f"/admin/groups/{gid}/members/{member.id}", headers=new_admin.headers)
    assert r.status_code == 200
    assert (await http.get(f"/documents/{doc}", headers=await member.headers())).status_code == 404
    r = await http.put(f"/admin/groups/{gid}/members/{member.id}", headers=new_admin.headers)
    assert r.status_code == 200
    assert (await http.get(f"/documents/{doc}", headers=await member.headers())).status_code == 200
    # A deleted group's shares go with it.
    assert (await http.delete(f"/admin/groups/{gid}", headers=new_admin.headers)).status_code == 204
    assert (await http.get(f"/documents/{doc}", headers=await member.headers())).status_code == 404
    for _ in range(100):
        shares = (await http.get(f"/documents/{doc}/shares", headers=await owner.headers())).json()["shares"]
        if not shares:
            break
        await __import__("asyncio").sleep(0.05)
    assert shares == []


async def test_a_shared_category_covers_what_its_owner_files_now_and_later(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    bills = (await http.post("/categories", headers=await owner.headers(), json={"name": "Bills"})).json()
    before = (await h.create(stack, owner.user, "before.pdf")).document.id
    unfiled = (await h.create(stack, owner.user, "unfiled.pdf")).document.id
    r = await http.post(
        "/documents/bulk",
        headers=await owner.headers(),
        json={"action": "assign_category", "ids": [str(before)], "category_id": bills["id"]},
    )
    assert r.json()["succeeded"] == 1
    await sh.share(http, owner, f"categories/{bills['id']}", "viewer", email=reader.email)
    later = (await h.create(stack, owner.user, "later.pdf")).document.id
    r = await http.post(
        "/documents/bulk",
        headers=await owner.headers(),
        json={"action": "assign_category", "ids": [str(later)], "category_id": bills["id"]},
    )
    assert r.json()["succeeded"] == 1
    seen = {d["id"] for d in await sh.listed(http, reader, scope="shared")}
    assert seen == {str(before), str(later)} and str(unfiled) not in seen

    # Categories stay personal: the reader does not see "Bills", and files the document under their own.
    detail = (await http.get(f"/documents/{later}", headers=await reader.headers())).json()
    assert detail["categories"] == []
    mine = (await http.post("/categories", headers=await reader.headers(), json={"name": "From Ann"})).json()
    r = await http.post(
        "/documents/bulk",
        headers=await reader.headers(),
        json={"action": "assign_category", "ids": [str(later)], "category_id": mine["id"]},
    )
    assert r.json()["succeeded"] == 1, r.text
    filed = await sh.listed(http, reader, category_any=mine["id"])
    assert [d["id"] for d in filed] == [str(later)]
    assert [c["name"] for c in filed[0]["categories"]] == ["From Ann"]
    owners_view = (await http.get(f"/documents/{later}", headers=await owner.headers())).json()
    assert [c["name"] for c in owners_view["categories"]] == ["Bills"]
    cats = (await http.get("/categories", headers=await reader.headers())).json()["items"]
    assert {c["name"]: c["document_count"] for c in cats}["From Ann"] == 1

    # A sharee's own category, shared onward, does not pass on documents they do not own.
    third = await sh.person(stack, http)
    await sh.share(http, reader, f"categories/{mine['id']}", "viewer", email=third.email)
    assert await sh.listed(http, third, scope="shared") == []

    # Taking the document out of the shared category ends that access (and the reader's count of it).
    r = await http.post(
        "/documents/bulk",
        headers=await owner.headers(),
        json={"action": "remove_category", "ids": [str(later)], "category_id": bills["id"]},
    )
    assert (await http.get(f"/documents/{later}", headers=await reader.headers())).status_code == 404
    cats = (await http.get("/categories", headers=await reader.headers())).json()["items"]
    assert {c["name"]: c["document_count"] for c in cats}["From Ann"] == 0


async def test_who_has_access_is_the_owners_to_see_and_manage(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    owner, editor, viewer = [await sh.person(stack, http) for _ in range(3)]
    doc = (await h.create(stack, owner.user, "access.pdf")).document.id
    await sh.share(http, owner, f"documents/{doc}", "editor", email=editor.email)
    await sh.share(http, owner, f"documents/{doc}", "viewer", email=viewer.email)
    full = (await http.get(f"/documents/{doc}/shares", headers=await owner.headers())).json()
    assert full["can_manage"] and full["role"] == "owner" and full["owner"]["email"] == owner.email
    assert {(s["user"]["email"], s["role"]) for s in full["shares"]} == {
        (editor.email, "editor"),
        (viewer.email, "viewer"),
    }
    theirs = (await http.get(f"/documents/{doc}/shares", headers=await viewer.headers())).json()
    assert not theirs["can_manage"] and theirs["role"] == "viewer"
    assert [s["user"]["email"] for s in theirs["shares"]] == [viewer.email]  # only what reaches them

    # Unknown addresses are refused without creating anything; sharing with oneself is refused.
    r = await http.post(
        f"/documents/{doc}/shares", headers=await owner.headers(), json={"email": "nobody@example.com"}
    )
    assert r.status_code == 404 and r.json()["error"]["details"] == {"field": "email"}
    r = await http.post(
        f"/documents/{doc}/shares", headers=await owner.headers(), json={"email": owner.email}
    )
    assert r.status_code == 422

    # An administrator manages anyone's access, and it is recorded as theirs.
    r = await http.get(f"/documents/{doc}/shares", headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["can_manage"] and r.json()["role"] is None
    vid = next(s["id"] for s in full["shares"] if s["user"]["email"] == viewer.email)
    assert (await http.delete(f"/shares/{vid}", headers=new_admin.headers)).status_code == 204
    assert (await http.get(f"/documents/{doc}", headers=await viewer.headers())).status_code == 404
    assert (await http.get(f"/documents/{doc}", headers=new_admin.headers)).status_code == 404  # no reading
    assert (await http.delete(f"/documents/{doc}", headers=new_admin.headers)).status_code == 204
    assert (await http.get(f"/documents/{doc}", headers=await owner.headers())).status_code == 404


async def test_live_progress_reaches_readers_and_stops_with_the_share(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The SSE stream forwards another owner's progress only while the document is shared with the caller.
    A sentinel (progress of the reader's own document, published after) proves what did not arrive."""
    import asyncio
    import json

    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    doc = (await h.create(stack, owner.user, "live.pdf")).document.id
    own = (await h.create(stack, reader.user, "sentinel.pdf")).document.id
    share = await sh.share(http, owner, f"documents/{doc}", "viewer", email=reader.email)
    deps = h.deps(stack)

    async def progress(document: uuid.UUID, by: AppUser, message: str) -> None:
        from services.docs.handlers.common import progress as publish

        await publish(deps, uuid.UUID(by.id), document, uuid.uuid4(), "queued", message)

    async def until(lines, message: str) -> list[str]:  # type: ignore[no-untyped-def]
        seen: list[str] = []
        async for line in lines:
            if line.startswith("data:"):
                seen.append(json.loads(line[5:])["message"])
                if seen[-1] == message:
                    return seen
        raise AssertionError("the stream ended")

    async with http.stream("GET", "/events", headers=await reader.headers(), timeout=30) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()
        assert (await anext(lines)).startswith("retry:")
        await progress(doc, owner.user, "shared-1")
        await progress(own, reader.user, "mine-1")
        assert await asyncio.wait_for(until(lines, "mine-1"), 30) == ["shared-1", "mine-1"]
        # Revoked while the stream is open: the next message of that document is not forwarded.
        assert (await http.delete(f"/shares/{share['id']}", headers=await owner.headers())).status_code == 204
        await progress(doc, owner.user, "shared-2")
        await progress(own, reader.user, "mine-2")
        assert await asyncio.wait_for(until(lines, "mine-2"), 30) == ["mine-2"]
