"""A list with shared documents reads each source in its own index order (services/docs/handlers/search.py):
the documents of a shared category are walked in the owner's order and kept when filed under it. Page by
page, in every sort, the list is exactly the caller's own, the shared documents and the shared category's
filed ones — each once, in order, never an unfiled document of the owner — with and without a category
filter (which reads the filed documents by category instead)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


async def _pages(http: httpx.AsyncClient, who: sh.Person, **query: Any) -> list[dict[str, Any]]:
    """Every page of a list of 2, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        params = {**query, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await http.get("/documents", headers=await who.headers(), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("the cursor never ended")


async def _file(http: httpx.AsyncClient, who: sh.Person, ids: list[str], category_id: str) -> None:
    r = await http.post(
        "/documents/bulk",
        headers=await who.headers(),
        json={"action": "assign_category", "ids": ids, "category_id": category_id},
    )
    assert r.json()["succeeded"] == len(ids), r.text


async def test_shared_sources_are_listed_once_each_in_order_page_by_page(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    # Names out of upload order, so that each sort gives another order.
    names = ["m.pdf", "c.pdf", "x.pdf", "a.pdf", "q.pdf", "f.pdf", "t.pdf", "b.pdf", "k.pdf"]
    docs = [str((await h.create(stack, owner.user, n)).document.id) for n in names]
    filed, unfiled = docs[::2], docs[1::2]  # 5 filed under the shared category, 4 not
    own = [str((await h.create(stack, reader.user, n)).document.id) for n in ("e.pdf", "z.pdf", "g.pdf")]
    bills = (await http.post("/categories", headers=await owner.headers(), json={"name": "Bills"})).json()
    await _file(http, owner, filed, bills["id"])
    await sh.share(http, owner, f"categories/{bills['id']}", "viewer", email=reader.email)
    await sh.share(http, owner, f"documents/{unfiled[0]}", "editor", email=reader.email)
    # Document shares are read as one branch whatever their roles: each row still carries its own, and a
    # document reached by its category (viewer) and by itself (editor) is listed once, as editor.
    await sh.share(http, owner, f"documents/{unfiled[1]}", "viewer", email=reader.email)
    await sh.share(http, owner, f"documents/{filed[2]}", "editor", email=reader.email)
    shared = {*filed, unfiled[0], unfiled[1]}
    editable = {unfiled[0], filed[2]}

    for sort, order, key in [
        ("uploaded_at", "desc", "uploaded_at"),
        ("title", "asc", "filename"),
        ("title", "desc", "filename"),
        ("filename", "asc", "filename"),
        ("size", "asc", "size"),
    ]:
        for scope, expected in (("all", shared | set(own)), ("shared", shared)):
            items = await _pages(http, reader, scope=scope, sort=sort, order=order)
            ids = [d["id"] for d in items]
            assert len(ids) == len(set(ids)), (sort, order, scope, ids)  # each once
            assert set(ids) == expected, (sort, order, scope)
            keys = [(d[key], d["id"]) for d in items]
            if key == "filename":
                keys = [(k.lower(), i) for k, i in keys]
            assert keys == sorted(keys, reverse=order == "desc"), (sort, order, scope, keys)
            roles = {d["id"]: d["role"] for d in items}
            assert roles == {i: "editor" if i in editable else "viewer" for i in shared} | {
                i: "owner" for i in own if i in roles
            }, (sort, order, scope)

    # With a category filter (the caller's own filing): only what they filed there, shared or their own.
    mine = (await http.post("/categories", headers=await reader.headers(), json={"name": "Keep"})).json()
    await _file(http, reader, [filed[1], own[0], unfiled[0]], mine["id"])
    for scope, expected in (("all", {filed[1], own[0], unfiled[0]}), ("shared", {filed[1], unfiled[0]})):
        items = await _pages(http, reader, scope=scope, category_any=mine["id"])
        assert sorted(d["id"] for d in items) == sorted(expected), scope

    # Taking a document out of the shared category takes it out of the list at once, in every order.
    r = await http.post(
        "/documents/bulk",
        headers=await owner.headers(),
        json={"action": "remove_category", "ids": [filed[0]], "category_id": bills["id"]},
    )
    assert r.json()["succeeded"] == 1
    for sort in ("uploaded_at", "title"):
        ids = {d["id"] for d in await _pages(http, reader, scope="shared", sort=sort)}
        assert ids == shared - {filed[0]}, sort


async def test_document_shares_of_both_roles_are_one_source_with_each_rows_role(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    docs = [str((await h.create(stack, owner.user, n)).document.id) for n in ("b.pdf", "a.pdf", "c.pdf")]
    for doc, role in zip(docs, ("editor", "viewer", "editor"), strict=True):
        await sh.share(http, owner, f"documents/{doc}", role, email=reader.email)
    for scope in ("shared", "all"):
        for sort, order in (("uploaded_at", "desc"), ("filename", "asc")):
            items = await _pages(http, reader, scope=scope, sort=sort, order=order)
            assert {d["id"]: d["role"] for d in items} == {
                docs[0]: "editor",
                docs[1]: "viewer",
                docs[2]: "editor",
            }, (scope, sort)
            expected = list(reversed(docs)) if sort == "uploaded_at" else [docs[1], docs[0], docs[2]]
            assert [d["id"] for d in items] == expected, (scope, sort)


async def test_an_edit_of_a_shared_document_moves_it_in_the_shared_list(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The shared branch sorts by the keys copied into document_access (migration 0015): a title edit, a new
    document date or a status step of a shared document moves it at once, page by page, in the shared and
    the whole list — reached by a document share and a category share alike."""
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    created = [(await h.create(stack, owner.user, n)).document for n in ("b.pdf", "c.pdf", "a.pdf")]
    docs = [str(d.id) for d in created]
    bills = (await http.post("/categories", headers=await owner.headers(), json={"name": "Bills"})).json()
    await _file(http, owner, docs[1:], bills["id"])
    await sh.share(http, owner, f"categories/{bills['id']}", "viewer", email=reader.email)
    await sh.share(http, owner, f"documents/{docs[0]}", "editor", email=reader.email)
    await sh.share(http, owner, f"documents/{docs[1]}", "editor", email=reader.email)  # reached twice
    own = str((await h.create(stack, reader.user, "m.pdf")).document.id)

    async def order(sort: str, way: str, scope: str = "shared") -> list[str]:
        items = await _pages(http, reader, scope=scope, sort=sort, order=way)
        return [d["id"] for d in items]

    assert await order("title", "asc") == [docs[2], docs[0], docs[1]]  # a, b, c
    r = await http.patch(f"/documents/{docs[2]}", headers=await owner.headers(), json={"title": "Zebra"})
    assert r.status_code == 200, r.text
    assert await order("title", "asc") == [docs[0], docs[1], docs[2]]  # b, c, zebra
    assert await order("title", "desc", "all") == [docs[2], own, docs[1], docs[0]]  # zebra, m, c, b
    # An editor's rename moves it for everyone it is shared with.
    r = await http.patch(f"/documents/{docs[1]}", headers=await reader.headers(), json={"title": "Apple"})
    assert r.status_code == 200, r.text
    assert await order("title", "asc") == [docs[1], docs[0], docs[2]]

    dates = {docs[0]: "2023-05-01", docs[1]: "2021-01-01", docs[2]: "2022-07-15"}
    for doc, when in dates.items():
        r = await http.patch(
            f"/documents/{doc}", headers=await owner.headers(), json={"fields": {"document_date": when}}
        )
        assert r.status_code == 200, r.text
    assert await order("document_date", "desc") == [docs[0], docs[2], docs[1]]
    r = await http.patch(
        f"/documents/{docs[1]}",
        headers=await owner.headers(),
        json={"fields": {"document_date": "2024-01-01"}},
    )
    assert r.status_code == 200, r.text
    assert await order("document_date", "desc") == [docs[1], docs[0], docs[2]]
    assert await order("document_date", "desc", "all") == [docs[1], docs[0], docs[2], own]  # own: no date

    # A status step (the pipeline, as the system) moves it in the status order.
    d, owner_id = created[2], uuid.UUID(owner.id)
    await h.extracted(stack, d.id, owner_id, d.run_id, ["text"])
    await h.analyzed(stack, d.id, owner_id, d.run_id)
    items = await _pages(http, reader, scope="shared", sort="status", order="asc")
    statuses = [(x["status"], x["id"]) for x in items]
    assert dict((i, st) for st, i in statuses)[docs[2]] == "ready"
    assert {st for st, i in statuses if i != docs[2]} != {"ready"}  # the others are still being processed
    assert statuses == sorted(statuses), statuses
    # The counts per status read the copied status: each shared document once (one is reached twice).
    for scope, extra in (("shared", []), ("all", [await _status_of(http, reader, own)])):
        r = await http.get("/documents/counts", params={"scope": scope}, headers=await reader.headers())
        by_status = {st: n for st, n in r.json()["by_status"].items() if n}
        assert by_status == Counter([st for st, _ in statuses] + extra), scope


async def _status_of(http: httpx.AsyncClient, who: sh.Person, doc: str) -> str:
    r = await http.get(f"/documents/{doc}", headers=await who.headers())
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_a_search_by_relevance_ranks_shared_and_own_matches_together(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """Relevance ranks the newest matches of each branch (the shared ones read newest first from the copied
    upload times): every match once, page by page, by rank, a document reached twice with its best role."""
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    texts = ["garden garden garden tools", "garden hose", "kitchen only", "garden garden shed"]
    theirs = [await h.ready_document(stack, owner.user, f"t{i}.pdf", t) for i, t in enumerate(texts)]
    own = await h.ready_document(stack, reader.user, "mine.pdf", "garden garden garden garden notes")
    bills = (await http.post("/categories", headers=await owner.headers(), json={"name": "Bills"})).json()
    await _file(http, owner, [str(theirs[0]), str(theirs[1])], bills["id"])
    await sh.share(http, owner, f"categories/{bills['id']}", "viewer", email=reader.email)
    for doc in (theirs[1], theirs[2], theirs[3]):
        await sh.share(http, owner, f"documents/{doc}", "editor", email=reader.email)
    matching = {str(theirs[0]): "viewer", str(theirs[1]): "editor", str(theirs[3]): "editor"}
    for scope, expected in (("shared", matching), ("all", matching | {str(own): "owner"})):
        items = await _pages(http, reader, scope=scope, q="garden", sort="relevance")
        assert {d["id"]: d["role"] for d in items} == expected, scope
        assert len(items) == len(expected)
        ranks = [d["rank"] for d in items]
        assert ranks == sorted(ranks, reverse=True), (scope, ranks)
        r = await http.get(
            "/documents",
            headers=await reader.headers(),
            params={"scope": scope, "q": "garden", "sort": "relevance", "limit": 2},
        )
        assert r.json()["total"] == len(expected), scope


async def test_a_search_of_only_what_is_shared_finds_each_match_once_until_revoked(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """Searching only what is shared (the words tested for every shared document at once): each match once,
    newest first page by page, with its total; another filter with the words; a revoke holding at once; never
    the sharer's unshared documents or the reader's own."""
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    texts = ["garden tools", "kitchen only", "garden hose", "garden shed", "garden bench"]
    theirs = [await h.ready_document(stack, owner.user, f"n{i}.pdf", t) for i, t in enumerate(texts)]
    await h.ready_document(stack, owner.user, "unshared.pdf", "garden secret")
    await h.ready_document(stack, reader.user, "mine.pdf", "garden notes")
    shares = [await sh.share(http, owner, f"documents/{d}", "viewer", email=reader.email) for d in theirs]
    matching = [str(theirs[i]) for i in (4, 3, 2, 0)]  # newest first

    items = await _pages(http, reader, scope="shared", q="garden")
    assert [d["id"] for d in items] == matching
    assert all(d["role"] == "viewer" for d in items)
    r = await http.get(
        "/documents", headers=await reader.headers(), params={"scope": "shared", "q": "garden"}
    )
    assert r.json()["total"] == 4
    two_words = await _pages(http, reader, scope="shared", q="garden hose")
    assert [d["id"] for d in two_words] == [str(theirs[2])]
    by_name = await _pages(http, reader, scope="shared", q="garden", sort="filename", order="asc")
    assert [d["id"] for d in by_name] == [str(theirs[i]) for i in (0, 2, 3, 4)]

    r = await http.delete(f"/shares/{shares[3]['id']}", headers=await owner.headers())
    assert r.status_code == 204
    items = await _pages(http, reader, scope="shared", q="garden")
    assert [d["id"] for d in items] == [str(theirs[i]) for i in (4, 2, 0)]


async def test_relevance_ranks_the_newest_matches_of_both_branches_since_the_oldest_own_candidate(
    stack: Stack, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RANK_CANDIDATES own matches or more, the shared matches ranked are those uploaded since the oldest
    own one ranked (older ones would not be among the newest matches, and are never probed); the total still
    counts every match."""
    from services.docs.handlers import search

    monkeypatch.setattr(search, "RANK_CANDIDATES", 2)  # the service runs in this process
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    made: dict[str, str] = {}
    # Uploaded one after the other, so their upload times interleave: S1 < O1 < S2 < O2 < S3 < O3 < S4.
    for name, who, text in [
        ("S1", owner, "garden garden garden garden"),
        ("O1", reader, "garden garden garden garden"),
        ("S2", owner, "garden garden garden"),
        ("O2", reader, "garden notes"),
        ("S3", owner, "garden shed"),
        ("O3", reader, "garden garden"),
        ("S4", owner, "kitchen only"),
    ]:
        made[name] = str(await h.ready_document(stack, who.user, f"{name}.pdf", text))
    for name in ("S1", "S2", "S3", "S4"):
        await sh.share(http, owner, f"documents/{made[name]}", "viewer", email=reader.email)

    items = await _pages(http, reader, scope="all", q="garden", sort="relevance")
    # Own candidates: the newest 2 (O3, O2); shared: those since O2 (S3) — not S1 or S2, however well they rank.
    assert sorted(d["id"] for d in items) == sorted(made[n] for n in ("O3", "O2", "S3"))
    ranks = [d["rank"] for d in items]
    assert ranks == sorted(ranks, reverse=True), ranks
    r = await http.get(
        "/documents",
        headers=await reader.headers(),
        params={"scope": "all", "q": "garden", "sort": "relevance", "limit": 2},
    )
    assert r.json()["total"] == 6  # O1–O3 and S1–S3: the count is not cut at the floor

    # Fewer own matches than RANK_CANDIDATES: no floor, the newest shared matches are ranked as before.
    monkeypatch.setattr(search, "RANK_CANDIDATES", 4)
    items = await _pages(http, reader, scope="all", q="garden", sort="relevance")
    assert sorted(d["id"] for d in items) == sorted(made[n] for n in ("O3", "O2", "O1", "S3", "S2", "S1"))
