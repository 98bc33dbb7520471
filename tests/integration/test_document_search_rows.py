"""The full-text vectors live in `document_search` (migration 0016), one row per document written by triggers on
`documents`: it follows every write path (upload, extraction, re-run, field edit, delete), and a search
returns exactly what the vectors computed from the documents row itself say (the generated columns of
before), in the same order, with the same ranks and totals."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from contracts.docs_api import DocumentRef
from services.docs import tables
from services.docs.handlers import runs
from services.docs.handlers.search import RANK_CANDIDATES
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h

S = tables.document_search.c


async def search_row(stack: Stack, user: AppUser, doc_id: uuid.UUID) -> Any:
    async with h.owner_session(stack, user) as s:
        return (await s.execute(select(tables.document_search).where(S.document_id == doc_id))).one_or_none()


async def found(http: httpx.AsyncClient, user: AppUser, q: str, **params: Any) -> list[str]:
    r = await http.get("/documents", headers=user.headers, params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [d["filename"] for d in r.json()["items"]]


async def test_the_search_row_follows_every_write_path(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    owner = uuid.UUID(new_user.id)
    d = (await h.create(stack, new_user, "quokka upload.pdf")).document
    row = await search_row(stack, new_user, d.id)  # on upload: the filename is searchable at once
    assert row is not None and row.owner_id == owner and row.created_at == d.uploaded_at
    assert await found(http, new_user, "quokka") == ["quokka upload.pdf"]

    # Extraction: the text (and the metadata title) become searchable; page text gives the snippet.
    await h.extracted(stack, d.id, owner, d.run_id, ["first page about wombats", "second page about numbats"])
    assert await found(http, new_user, "wombats") == ["quokka upload.pdf"]
    r = await http.get("/documents", headers=new_user.headers, params={"q": "numbats"})
    assert r.json()["items"][0]["snippet"] and "<mark>numbats</mark>" in r.json()["items"][0]["snippet"]

    # The AI's fields: type, title and sender.
    await h.analyzed(
        stack, d.id, owner, d.run_id, document_type="invoice", sender="Platypus Ltd", title="Echidna bill"
    )
    row = await search_row(stack, new_user, d.id)
    assert row.document_type == "invoice"
    for word in ("platypus", "echidna", "wombats"):
        assert await found(http, new_user, word, document_type="invoice") == ["quokka upload.pdf"], word

    # A user's edit of the title.
    r = await http.patch(f"/documents/{d.id}", headers=new_user.headers, json={"title": "Bandicoot notes"})
    assert r.status_code == 200, r.text
    assert await found(http, new_user, "bandicoot") == ["quokka upload.pdf"]
    assert await found(http, new_user, "echidna") == []

    # A re-run: the new run's text replaces the old one's.
    a = await h.actor(stack, new_user)
    run = (await runs.reprocess_document(DocumentRef(id=d.id), h.ctx(a), h.deps(stack))).run_id
    await h.extracted(stack, d.id, owner, run, ["only dingoes now"])
    assert await found(http, new_user, "dingoes") == ["quokka upload.pdf"]
    assert await found(http, new_user, "wombats") == []
    assert await found(http, new_user, "numbats") == []

    # Delete: the row goes with its document.
    r = await http.delete(f"/documents/{d.id}", headers=new_user.headers)
    assert r.status_code in (200, 204), r.text
    assert await search_row(stack, new_user, d.id) is None
    assert await found(http, new_user, "dingoes") == []


async def test_only_the_trigger_writes_search_rows(stack: Stack, new_user: AppUser) -> None:
    doc = await h.ready_document(stack, new_user, "mine.pdf", "my own words")
    with pytest.raises(DBAPIError, match="row-level security"):
        async with h.owner_session(stack, new_user, write=True) as s:
            await s.execute(
                insert(tables.document_search).values(
                    document_id=uuid.uuid4(),
                    owner_id=uuid.UUID(new_user.id),
                    created_at=text("now()"),
                    search=text("to_tsvector('simple', 'forged')"),
                    rank_vector=text("to_tsvector('simple', 'forged')"),
                )
            )
    async with h.owner_session(stack, new_user, write=True) as s:
        changed = await s.execute(
            tables.document_search.update()
            .where(S.document_id == doc)
            .values(search=text("to_tsvector('simple', 'forged')"))
        )
        assert changed.rowcount == 0


CORPUS = [
    # filename, text, type, sender, title words come from the AI fields below
    ("a.pdf", "garden tools garden seeds and a salary slip", "invoice", "Green Shop"),
    ("b.pdf", "electricity bill, garden lights", "invoice", "City Power"),
    ("c.pdf", "employment contract salary terms salary review", "contract", "Acme Corp"),
    ("d.pdf", "payslip of march salary", "payslip", "Acme Corp"),
    ("e.pdf", "letter about the garden fence and the garden gate", "letter", "Neighbour"),
    ("f.pdf", "bank statement salary credit garden shop debit", "bank_statement", "Big Bank"),
    ("g.pdf", "insurance policy for the garden house", "contract", "Safe Insurance"),
    ("h.pdf", "an unrelated note", None, None),
]

# The vectors the documents rows generated before migration 0016, computed here from the row itself.
EXPECTED = text(
    f"SELECT d.filename, ({tables.SEARCH_EXPRESSION}) @@ websearch_to_tsquery('simple', :q) AS hit,"
    f" ts_rank({tables.RANK_EXPRESSION}, websearch_to_tsquery('simple', :q)) AS rank,"
    " d.created_at, d.id, d.document_type FROM docs.documents d WHERE d.owner_id = :owner"
)


@pytest.fixture
async def corpus(stack: Stack, http: httpx.AsyncClient) -> AppUser:
    user = await register_and_login(http)
    for filename, body, kind, sender in CORPUS:
        await h.ready_document(stack, user, filename, body, document_type=kind, sender=sender)
    return user


async def expected(stack: Stack, user: AppUser, q: str, kind: str | None = None) -> list[Any]:
    async with h.owner_session(stack, user) as s:
        rows = (await s.execute(EXPECTED, {"q": q, "owner": uuid.UUID(user.id)})).all()
    return [r for r in rows if r.hit and (kind is None or r.document_type == kind)]


async def pages(
    http: httpx.AsyncClient, user: AppUser, params: dict[str, Any]
) -> tuple[list[Any], list[int]]:
    """Every page of a search, two rows at a time (the cursor), and the total each page gave."""
    items, totals, cursor = [], [], None
    while True:
        r = await http.get(
            "/documents",
            headers=user.headers,
            params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        totals.append(body["total"])
        cursor = body["next_cursor"]
        if not cursor:
            return items, totals


@pytest.mark.parametrize(
    "q", ["garden", "salary", "garden salary", "insurance", "acme", "nothing-matches", '"garden fence"']
)
@pytest.mark.parametrize("kind", [None, "invoice"])
async def test_search_results_are_those_of_the_documents_own_vectors(
    stack: Stack, http: httpx.AsyncClient, corpus: AppUser, q: str, kind: str | None
) -> None:
    rows = await expected(stack, corpus, q, kind)
    assert len(rows) < RANK_CANDIDATES  # every match is a candidate: the ranks are comparable
    filters = {"q": q, **({"document_type": kind} if kind else {})}
    for scope in ("mine", "all"):
        newest, totals = await pages(http, corpus, {**filters, "scope": scope})
        want = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
        assert [i["filename"] for i in newest] == [r.filename for r in want], (q, kind, scope)
        assert set(totals) == {len(rows)}
        ranked, _ = await pages(http, corpus, {**filters, "scope": scope, "sort": "relevance"})
        want = sorted(rows, key=lambda r: (r.rank, r.id), reverse=True)
        assert [i["filename"] for i in ranked] == [r.filename for r in want], (q, kind, scope)
        assert [i["rank"] for i in ranked] == pytest.approx([r.rank for r in want])
