"""Filters, full-text search, sorting and keyset pagination return exactly the right rows.

Documents are recorded through the service's own handlers (as the workers' events would record them),
so every value is known and the expected rows can be computed here independently.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest_asyncio

from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h

ROWS = [
    # filename, text, type, sender, date, categories
    ("alpha.pdf", "Invoice for garden tools and seeds", "invoice", "Green Shop", date(2024, 1, 10), ["Home"]),
    (
        "bravo.pdf",
        "Electricity bill for January",
        "invoice",
        "City Power",
        date(2024, 2, 1),
        ["Home", "Bills"],
    ),
    (
        "charlie.pdf",
        "Employment contract with salary terms",
        "contract",
        "Acme Corp",
        date(2023, 6, 15),
        ["Work"],
    ),
    ("delta.pdf", "Payslip of March salary", "payslip", "Acme Corp", date(2024, 3, 31), ["Work", "Bills"]),
    ("echo.pdf", "Letter about the garden fence", "letter", "Neighbour", None, []),
    (
        "foxtrot.pdf",
        "Bank statement with salary credit and garden shop debit",
        "bank_statement",
        "Big Bank",
        date(2024, 2, 1),
        ["Bills"],
    ),
]


@pytest_asyncio.fixture
async def library(stack: Stack, http: httpx.AsyncClient) -> tuple[AppUser, dict[str, str], dict[str, str]]:
    user = await register_and_login(http)
    cats: dict[str, str] = {}
    for name in ("Home", "Bills", "Work"):
        cats[name] = (await http.post("/categories", headers=user.headers, json={"name": name})).json()["id"]
    ids: dict[str, str] = {}
    for filename, text, kind, sender, when, categories in ROWS:
        ids[filename] = str(
            await h.ready_document(
                stack,
                user,
                filename,
                text,
                document_type=kind,
                sender=sender,
                document_date=when,
                categories=categories,
            )
        )
    return user, ids, cats


async def names(http: httpx.AsyncClient, user: AppUser, **params: Any) -> list[str]:
    r = await http.get("/documents", headers=user.headers, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"]) or params.get("limit")
    return [d["filename"] for d in body["items"]]


async def test_filters(http: httpx.AsyncClient, library: Any) -> None:
    user, _, cats = library
    n = lambda **p: names(http, user, sort="filename", order="asc", **p)  # noqa: E731
    assert await n() == [r[0] for r in ROWS]
    assert await n(document_type="invoice") == ["alpha.pdf", "bravo.pdf"]
    assert await n(document_type="invoice,payslip") == ["alpha.pdf", "bravo.pdf", "delta.pdf"]
    assert await n(sender="acme") == ["charlie.pdf", "delta.pdf"]
    assert await n(date_from="2024-02-01", date_to="2024-02-29") == ["bravo.pdf", "foxtrot.pdf"]
    assert await n(category_any=f"{cats['Home']},{cats['Work']}") == [
        "alpha.pdf",
        "bravo.pdf",
        "charlie.pdf",
        "delta.pdf",
    ]
    assert await n(category_all=f"{cats['Home']},{cats['Bills']}") == ["bravo.pdf"]
    assert await n(category_all=cats["Bills"], category_any=cats["Work"]) == ["delta.pdf"]
    assert await n(status="ready") == [r[0] for r in ROWS]
    assert await n(status="failed") == []
    assert await n(duplicate="false", q="garden") == ["alpha.pdf", "echo.pdf", "foxtrot.pdf"]
    r = await http.get("/documents", headers=user.headers, params={"sort": "password"})
    assert r.status_code == 422


async def test_full_text_search_ranked_with_snippet(http: httpx.AsyncClient, library: Any) -> None:
    user, _, _ = library
    assert sorted(await names(http, user, q="salary")) == ["charlie.pdf", "delta.pdf", "foxtrot.pdf"]
    assert await names(http, user, q="salary -garden", sort="filename", order="asc") == [
        "charlie.pdf",
        "delta.pdf",
    ]
    assert await names(http, user, q='"garden fence"') == ["echo.pdf"]
    assert await names(http, user, q="salary OR electricity", sort="filename", order="asc") == [
        "bravo.pdf",
        "charlie.pdf",
        "delta.pdf",
        "foxtrot.pdf",
    ]
    # The sender is weighted above the body text.
    r = await http.get("/documents", headers=user.headers, params={"q": "acme salary", "sort": "relevance"})
    items = r.json()["items"]
    assert {d["filename"] for d in items} == {"charlie.pdf", "delta.pdf"}
    assert items[0]["rank"] >= items[1]["rank"] > 0
    r = await http.get("/documents", headers=user.headers, params={"q": "fence"})
    assert "<mark>fence</mark>" in r.json()["items"][0]["snippet"]


async def test_sort_and_keyset_pages(http: httpx.AsyncClient, library: Any) -> None:
    user, _, _ = library
    by_date = sorted(ROWS, key=lambda r: (r[4] or date.min, r[0]))
    for sort, order, expected in [
        ("filename", "desc", sorted((r[0] for r in ROWS), reverse=True)),
        ("document_date", "asc", None),
        ("uploaded_at", "asc", [r[0] for r in ROWS]),
        ("uploaded_at", "desc", [r[0] for r in reversed(ROWS)]),
    ]:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"sort": sort, "order": order, "limit": 4}
            if cursor:
                params["cursor"] = cursor
            r = await http.get("/documents", headers=user.headers, params=params)
            body = r.json()
            assert body["total"] == len(ROWS)
            seen += [d["filename"] for d in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert pages == 2 and len(seen) == len(ROWS) == len(set(seen))
        if expected is not None:
            assert seen == expected, (sort, order)
        else:
            # Equal dates are ordered by id, so only the sequence of dates is fixed.
            dates = {r[0]: r[4] or date.min for r in ROWS}
            assert [dates[s] for s in seen] == [r[4] or date.min for r in by_date]
    # Relevance pages too, and a cursor of another query is refused.
    r = await http.get(
        "/documents", headers=user.headers, params={"q": "salary", "sort": "relevance", "limit": 2}
    )
    first = r.json()
    r = await http.get(
        "/documents",
        headers=user.headers,
        params={"q": "salary", "sort": "relevance", "limit": 2, "cursor": first["next_cursor"]},
    )
    rest = [d["filename"] for d in r.json()["items"]]
    assert len(rest) == 1 and rest[0] not in [d["filename"] for d in first["items"]]
    r = await http.get(
        "/documents", headers=user.headers, params={"q": "garden", "cursor": first["next_cursor"]}
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "cursor"


async def test_total_is_exact_up_to_the_cap(http: httpx.AsyncClient, library: Any, monkeypatch: Any) -> None:
    from services.docs.handlers import search

    user, _, _ = library
    body = (await http.get("/documents", headers=user.headers)).json()
    assert (body["total"], body["total_exact"]) == (len(ROWS), True)
    monkeypatch.setattr(search, "COUNT_CAP", 4)  # the service runs in this process
    body = (await http.get("/documents", headers=user.headers)).json()
    assert (body["total"], body["total_exact"], len(body["items"])) == (4, False, len(ROWS))


async def test_relevance_ranks_the_newest_candidates(
    http: httpx.AsyncClient, library: Any, monkeypatch: Any
) -> None:
    from services.docs.handlers import search

    user, _, _ = library
    monkeypatch.setattr(search, "RANK_CANDIDATES", 2)
    r = await http.get("/documents", headers=user.headers, params={"q": "salary", "sort": "relevance"})
    assert sorted(d["filename"] for d in r.json()["items"]) == ["delta.pdf", "foxtrot.pdf"]
