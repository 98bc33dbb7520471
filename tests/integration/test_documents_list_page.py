"""What one list page carries besides the rows: categories, snippets, total; and relevance pages that join up.

The list is one SQL statement (page, capped count, categories and snippets together), so these check each
part against what the document's own detail says, and the edge where the page is empty.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h


async def _page(http: httpx.AsyncClient, user: AppUser, **params: Any) -> dict[str, Any]:
    r = await http.get("/documents", headers=user.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_page_carries_categories_snippets_and_total(stack: Stack, http: httpx.AsyncClient) -> None:
    user = await register_and_login(http)
    for name in ("bills", "Home", "Work"):
        assert (await http.post("/categories", headers=user.headers, json={"name": name})).status_code in (
            200,
            201,
        )
    tagged = await h.ready_document(
        stack, user, "tagged.pdf", "Water bill for the garden tap", categories=["Work", "bills", "Home"]
    )
    await h.ready_document(stack, user, "plain.pdf", "Letter about nothing in particular")

    body = await _page(http, user, sort="filename", order="asc")
    assert (body["total"], body["total_exact"], body["next_cursor"]) == (2, True, None)
    listed = {d["filename"]: d for d in body["items"]}
    detail = (await http.get(f"/documents/{tagged}", headers=user.headers)).json()
    # Same categories as the detail, ordered by name ignoring case.
    assert listed["tagged.pdf"]["categories"] == detail["categories"]
    assert [c["name"] for c in listed["tagged.pdf"]["categories"]] == ["bills", "Home", "Work"]
    assert listed["plain.pdf"]["categories"] == []
    # Snippets and ranks only when searching.
    assert all(d["snippet"] is None and d["rank"] is None for d in body["items"])
    found = await _page(http, user, q="garden", sort="relevance")
    assert [d["filename"] for d in found["items"]] == ["tagged.pdf"] and found["total"] == 1
    assert "<mark>garden</mark>" in found["items"][0]["snippet"] and found["items"][0]["rank"] > 0
    assert found["items"][0]["categories"] == detail["categories"]
    # Nothing matches: still a total (0), no rows, no cursor.
    empty = await _page(http, user, q="zeppelin")
    assert (empty["items"], empty["total"], empty["total_exact"], empty["next_cursor"]) == ([], 0, True, None)


async def test_relevance_pages_join_up_in_rank_order(stack: Stack, http: httpx.AsyncClient) -> None:
    user = await register_and_login(http)
    # "salary" appears 1..5 times: more occurrences rank higher.
    for n in range(1, 6):
        await h.ready_document(
            stack, user, f"doc{n}.pdf", " ".join(["salary"] * n + ["other words here"] * 3)
        )
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "salary", "sort": "relevance", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = await _page(http, user, **params)
        assert body["total"] == 5
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [d["filename"] for d in seen] == [f"doc{n}.pdf" for n in range(5, 0, -1)]
    ranks = [d["rank"] for d in seen]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == 5


async def test_a_snippet_comes_from_the_first_matching_page(stack: Stack, http: httpx.AsyncClient) -> None:
    """Headlining costs in proportion to the text, so the snippet is cut from the first page that matches,
    never from the whole document; a match only in the title headlines the title."""
    user = await register_and_login(http)
    res = await h.create(stack, user, "long.pdf")
    filler = " ".join(["ledger entry routine"] * 2000)  # 40,000 characters a page
    texts = [filler, "Page two: the harbour crane invoice", "nothing here", "the harbour again, page four"]
    await h.extracted(stack, res.document.id, uuid.UUID(user.id), res.document.run_id, texts)
    await h.analyzed(
        stack, res.document.id, uuid.UUID(user.id), res.document.run_id, title="Crane maintenance"
    )

    found = await _page(http, user, q="harbour")
    assert [d["filename"] for d in found["items"]] == ["long.pdf"]
    snippet = found["items"][0]["snippet"]
    assert "<mark>harbour</mark> crane invoice" in snippet  # page 2, the first page with the word
    assert "page four" not in snippet

    by_title = await _page(http, user, q="maintenance")
    assert by_title["items"][0]["snippet"] == "Crane <mark>maintenance</mark>"
