"""The documents list statement, compiled for PostgreSQL without a database (services/docs/handlers/search.py):
every filter, sort, the cursor, the relevance candidates, the capped count and where snippets come from.
The integration tests (tests/integration/test_documents_list*.py) run the same statement on real data;
these pin down its shape, which bench/bench_list.py measured (docs/architecture.md, "Listing and search")."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from sqlalchemy.dialects import postgresql

from contracts import Invalid
from contracts.docs_api import (
    COUNT_CAP,
    DocumentCounts,
    DocumentFieldsUpdate,
    EditableField,
    ListDocuments,
    SortKey,
)
from contracts.documents import DocumentFields, DocumentStatus, ExtractedFields
from services.docs.access import Caller
from services.docs.handlers import search
from services.docs.handlers.common import PROMOTED, promoted
from services.docs.handlers.pipeline import STATUS_RANK
from services.docs.tables import documents
from services.kit.security import Actor

OWNER = uuid.UUID("11111111-1111-1111-1111-111111111111")
ROW = uuid.UUID("44444444-4444-4444-4444-444444444444")
CAT_A = uuid.UUID("22222222-2222-2222-2222-222222222222")
CAT_B = uuid.UUID("33333333-3333-3333-3333-333333333333")
D = "docs.documents"
S = "docs.document_search"


CALLER = Caller(Actor(user_id=OWNER, role="user", session_id="s", token=""))


def sql(**query: Any) -> str:
    """The statement of a list of the caller's own documents (`scope=mine`; sharing: test_docs_access.py)."""
    stmt = search.list_statement(ListDocuments.model_validate({"scope": "mine", **query}), CALLER)
    compiled = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return re.sub(r"\s+", " ", str(compiled))


def matches_part(statement: str) -> str:
    """The capped count's subquery: the filter conditions, exactly as the page applies them."""
    return statement.split("FROM (SELECT docs.documents.id AS id FROM docs.documents WHERE ", 1)[1].split(
        " LIMIT ", 1
    )[0]


def test_every_query_is_scoped_to_the_owner_and_reads_no_text_for_a_page() -> None:
    s = sql()
    assert matches_part(s) == f"{D}.owner_id = '{OWNER}'"
    page = s.split("LEFT OUTER JOIN (", 1)[1]
    assert f"WHERE {D}.owner_id = '{OWNER}' ORDER BY" in page
    for heavy in ("body_text", f"{D}.search", f"{D}.fields", "pdf_metadata", "rank_vector"):
        assert heavy not in s
    assert "NULL AS snippet" in s  # no search text, no headline


@pytest.mark.parametrize(
    ("query", "condition"),
    [
        ({"status": ["ready", "failed"]}, f"{D}.status IN ('ready', 'failed')"),
        ({"document_type": ["invoice"]}, f"{D}.document_type IN ('invoice')"),
        (
            {"category_any": [str(CAT_A), str(CAT_B)]},
            f"{D}.id IN (SELECT docs.document_categories.document_id FROM docs.document_categories "
            f"WHERE docs.document_categories.category_id IN ('{CAT_A}', '{CAT_B}'))",
        ),
        (  # all-of, newest first, one's own: one test per distinct category against its hashed filings, so the
            # list-order walk stays in order (as semi-joins in any other list, below)
            {"category_all": [str(CAT_A), str(CAT_B), str(CAT_A)]},
            f"({D}.id IN (SELECT docs.document_categories.document_id FROM docs.document_categories "
            f"WHERE docs.document_categories.category_id = '{CAT_A}')) IS true AND ({D}.id IN (SELECT "
            "docs.document_categories.document_id FROM docs.document_categories "
            f"WHERE docs.document_categories.category_id = '{CAT_B}')) IS true",
        ),
        (  # sorted otherwise: one semi-join per distinct category
            {"category_all": [str(CAT_A), str(CAT_B), str(CAT_A)], "sort": "size"},
            f"{D}.id IN (SELECT docs.document_categories.document_id FROM docs.document_categories "
            f"WHERE docs.document_categories.category_id = '{CAT_A}') AND {D}.id IN (SELECT "
            "docs.document_categories.document_id FROM docs.document_categories "
            f"WHERE docs.document_categories.category_id = '{CAT_B}')",
        ),
        # Starts with, ignoring case, LIKE's own characters escaped: the (owner, lower(sender)) index.
        # (the bound pattern is `acme\_\%%`: `%` is doubled in this rendering for the driver's paramstyle)
        ({"sender": " Acme_% "}, f"lower({D}.sender) LIKE 'acme\\_\\%%%%' ESCAPE '\\'"),
        (  # written as the document-date sort expression, so its index serves the range
            {"date_from": "2024-01-01", "date_to": "2024-12-31"},
            f"{D}.document_date IS NOT NULL AND coalesce({D}.document_date, DATE '0001-01-01') >= "
            f"'2024-01-01' AND coalesce({D}.document_date, DATE '0001-01-01') <= '2024-12-31'",
        ),
        (
            {"uploaded_from": "2024-01-01T00:00:00Z", "uploaded_to": "2024-02-01T00:00:00Z"},
            f"{D}.created_at >= '2024-01-01 00:00:00+00:00' AND {D}.created_at <= '2024-02-01 00:00:00+00:00'",
        ),
        ({"duplicate": True}, f"{D}.duplicate_of IS NOT NULL"),
        ({"duplicate": False}, f"{D}.duplicate_of IS NULL"),
        (  # a search with a filter of the documents row: its vector is probed by id (own searches: below)
            {"q": "  invoice garden ", "status": ["ready"]},
            f"{D}.status IN ('ready') AND (EXISTS (SELECT 1 AS anon_1 FROM {S} WHERE {S}.document_id = "
            f"{D}.id AND {S}.owner_id = {D}.owner_id AND ({S}.search @@ websearch_to_tsquery('simple'::regconfig, "
            "'invoice garden'))))",
        ),
    ],
)
def test_each_filter_is_one_condition_of_the_count_and_the_page(
    query: dict[str, Any], condition: str
) -> None:
    s = sql(**query)
    assert matches_part(s) == f"{D}.owner_id = '{OWNER}' AND {condition}"
    page = s.split("LEFT OUTER JOIN (", 1)[1]
    assert f"WHERE {D}.owner_id = '{OWNER}' AND {condition} ORDER BY" in page


def test_a_blank_search_text_is_no_search() -> None:
    assert sql(q="   ") == sql()


SORTS = {  # each is the expression of its (owner, key, id) index (migrations 0002, 0006)
    "uploaded_at": f"{D}.created_at",
    "document_date": f"coalesce({D}.document_date, DATE '0001-01-01')",
    "title": f"lower(coalesce({D}.title, {D}.filename))",
    "filename": f"lower({D}.filename)",
    "size": f"{D}.size",
    "status": f"{D}.status",
}


def test_every_sort_key_but_relevance_is_indexed() -> None:
    assert set(SORTS) | {"relevance"} == set(get_args(SortKey))


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORTS))
def test_each_sort_orders_by_its_key_then_id(sort: str, order: str) -> None:
    s = sql(sort=sort, order=order, limit=20)
    way = order.upper()
    key = SORTS[sort]
    assert (
        f"{key} AS sort_key FROM {D} WHERE {D}.owner_id = '{OWNER}' ORDER BY {key} {way}, {D}.id {way} LIMIT 21)"
        in s
    )
    assert s.endswith(f"AS page ON true ORDER BY page.sort_key {way}, page.id {way}")


VALUES: dict[str, tuple[Any, str]] = {
    "uploaded_at": (datetime(2024, 5, 1, 12, tzinfo=UTC), "'2024-05-01 12:00:00+00:00'"),
    "document_date": (date(2024, 5, 1), "'2024-05-01'"),
    "title": ("abc", "'abc'"),
    "filename": ("f.pdf", "'f.pdf'"),
    "size": (1234, "1234"),
    "status": ("ready", "'ready'"),
}


@pytest.mark.parametrize(("order", "op"), [("asc", ">"), ("desc", "<")])
@pytest.mark.parametrize("sort", list(VALUES))
def test_the_cursor_continues_after_the_last_row(sort: SortKey, order: str, op: str) -> None:
    value, rendered = VALUES[sort]
    cursor = search.list_cursor(sort, order, None, value, ROW)
    s = sql(sort=sort, order=order, cursor=cursor)
    assert f"WHERE {D}.owner_id = '{OWNER}' AND ({SORTS[sort]}, {D}.id) {op} ({rendered}, '{ROW}')" in s
    # The count is of every match, not only of those after the cursor.
    assert matches_part(s) == f"{D}.owner_id = '{OWNER}'"


def test_a_cursor_fits_only_its_own_query() -> None:
    cursor = search.list_cursor("title", "asc", "garden", "abc", ROW)
    for other in (
        {"sort": "title", "order": "asc", "q": "salary"},
        {"sort": "title", "order": "desc", "q": "garden"},
        {"sort": "filename", "order": "asc", "q": "garden"},
    ):
        with pytest.raises(Invalid) as err:
            sql(**other, cursor=cursor)
        assert err.value.details == [{"field": "cursor", "message": "invalid"}]
    for garbage in ("not-base64!", "W10", search.list_cursor("size", "desc", None, "x", ROW)):
        with pytest.raises(Invalid):
            sql(sort="size", cursor=garbage)
    assert sql(sort="title", order="asc", q="garden", cursor=cursor)


def test_relevance_needs_a_search_text() -> None:
    with pytest.raises(Invalid) as err:
        sql(sort="relevance")
    assert err.value.details == [{"field": "sort", "message": "needs q"}]


def test_relevance_ranks_only_the_newest_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    rank = "CAST(ts_rank(candidates.rank_vector, websearch_to_tsquery('simple'::regconfig, 'salary')) AS DOUBLE PRECISION)"
    s = sql(q="salary", sort="relevance", status=["ready"])
    condition = (
        f"{D}.owner_id = '{OWNER}' AND {D}.status IN ('ready') AND (EXISTS (SELECT 1 AS anon_1 FROM {S} WHERE "
        f"{S}.document_id = {D}.id AND {S}.owner_id = {D}.owner_id AND ({S}.search @@ "
        "websearch_to_tsquery('simple'::regconfig, 'salary'))))"
    )
    # The candidates: the newest matches, picked once and ranked on their bounded vector.
    assert (
        f"{S}.rank_vector AS rank_vector FROM {D} JOIN {S} ON {S}.document_id = {D}.id WHERE {condition} "
        f"ORDER BY {D}.created_at DESC, {D}.id DESC LIMIT {search.RANK_CANDIDATES}) AS candidates "
        f"ORDER BY {rank} DESC, candidates.id DESC LIMIT 51)"
    ) in s
    assert f"{rank} AS sort_key FROM (SELECT" in s
    assert matches_part(s) == condition  # the count is of all matches, not of the candidates
    monkeypatch.setattr(search, "RANK_CANDIDATES", 7)
    assert "LIMIT 7) AS candidates" in sql(q="salary", sort="relevance")
    assert "LIMIT 7) AS candidates" in sql(q="salary", sort="relevance", status=["ready"])
    cursor = search.list_cursor("relevance", "desc", "salary", 0.25, ROW)
    assert f"WHERE ({rank}, candidates.id) < (0.25, '{ROW}')" in sql(
        q="salary", sort="relevance", status=["ready"], cursor=cursor
    )
    assert f"WHERE ({rank}, candidates.document_id) < (0.25, '{ROW}')" in sql(
        q="salary", sort="relevance", cursor=cursor
    )


def test_a_filed_list_cuts_its_page_as_ids_in_list_order_then_reads_the_rows() -> None:
    s = sql(category_all=[str(CAT_A)], status=["ready"])
    filed = (
        f"{D}.owner_id = '{OWNER}' AND {D}.status IN ('ready') AND ({D}.id IN (SELECT docs.document_categories."
        "document_id FROM docs.document_categories WHERE docs.document_categories.category_id = "
        f"'{CAT_A}')) IS true"
    )
    assert (
        f"FROM (SELECT {D}.id AS id, {D}.created_at AS sort_key FROM {D} WHERE {filed} ORDER BY {D}.created_at "
        f"DESC, {D}.id DESC LIMIT 51) AS hits JOIN {D} ON {D}.id = hits.id"
    ) in s
    assert matches_part(s) == filed


OWN_SEARCH = (
    f"{S}.owner_id = '{OWNER}' AND ({S}.search @@ websearch_to_tsquery('simple'::regconfig, 'salary'))"
)


def test_a_search_of_ones_own_documents_reads_the_narrow_search_rows() -> None:
    """Newest first: the count and the page's ids from `document_search` alone, then the page's documents."""
    s = sql(q="salary")
    assert (
        f"FROM (SELECT {S}.document_id AS id FROM {S} WHERE {OWN_SEARCH} LIMIT {COUNT_CAP + 1}) AS matches"
        in s
    )
    assert (
        f"FROM (SELECT {S}.document_id AS id, {S}.created_at AS sort_key FROM {S} WHERE {OWN_SEARCH} "
        f"ORDER BY {S}.created_at DESC, {S}.document_id DESC LIMIT 51) AS hits JOIN {D} ON {D}.id = hits.id"
    ) in s
    assert f"FROM {D} WHERE" not in s  # no documents row but the page's
    # By relevance: the newest candidates from the search rows, ranked, the page cut from them.
    ranked = sql(q="salary", sort="relevance")
    assert (
        f"(SELECT {S}.document_id AS document_id, {S}.created_at AS created_at, {S}.rank_vector AS rank_vector "
        f"FROM {S} WHERE {OWN_SEARCH} "
        f"ORDER BY {S}.created_at DESC, {S}.document_id DESC LIMIT {search.RANK_CANDIDATES}) AS candidates"
    ) in ranked
    cursor = search.list_cursor("uploaded_at", "desc", "salary", datetime(2024, 5, 1, 12, tzinfo=UTC), ROW)
    assert (
        f"WHERE {OWN_SEARCH} AND ({S}.created_at, {S}.document_id) < ('2024-05-01 12:00:00+00:00', '{ROW}')"
        in sql(q="salary", cursor=cursor)
    )


def test_the_search_rows_answer_type_category_and_upload_filters_and_nothing_else() -> None:
    s = sql(
        q="salary",
        document_type=["invoice"],
        category_any=[str(CAT_A)],
        category_all=[str(CAT_B)],
        uploaded_from=datetime(2024, 1, 1, tzinfo=UTC),
    )
    link = "docs.document_categories"
    assert (
        f"WHERE {OWN_SEARCH} AND {S}.document_type IN ('invoice') AND {S}.document_id IN (SELECT {link}.document_id "
        f"FROM {link} WHERE {link}.category_id IN ('{CAT_A}')) AND {S}.document_id IN (SELECT {link}.document_id "
        f"FROM {link} WHERE {link}.category_id = '{CAT_B}') AND {S}.created_at >= '2024-01-01 00:00:00+00:00' LIMIT"
    ) in s
    # A filter or sort of the documents row: the documents are read, their vectors probed by id.
    for other in (
        {"status": ["ready"]},
        {"sender": "acme"},
        {"date_from": date(2024, 1, 1)},
        {"duplicate": False},
        {"sort": "title"},
    ):
        s = sql(q="salary", **other)
        assert f"FROM (SELECT {D}.id AS id FROM {D} WHERE" in s, other
        assert f"FROM {S} WHERE {S}.document_id = {D}.id" in s, other


def test_the_count_stops_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert f"LIMIT {COUNT_CAP + 1}) AS matches) AS counted LEFT OUTER JOIN" in sql()
    monkeypatch.setattr(search, "COUNT_CAP", 4)
    assert "LIMIT 5) AS matches) AS counted LEFT OUTER JOIN" in sql()


def test_snippets_are_cut_from_the_first_matching_page_of_the_listed_rows() -> None:
    s = sql(q="salary")
    assert (
        "ts_headline('simple'::regconfig, coalesce((SELECT left(docs.pages.text, "
        f"{search.SNIPPET_TEXT_CHARS}) AS left_1 FROM docs.pages WHERE docs.pages.document_id = page.id AND "
        "(docs.pages.search @@ websearch_to_tsquery('simple'::regconfig, 'salary')) ORDER BY docs.pages.number "
        "LIMIT 1), page.title, page.filename), websearch_to_tsquery('simple'::regconfig, 'salary'), "
        "'StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=10, MaxFragments=2') AS snippet"
    ) in s
    assert "body_text" not in s


def page_row(n: int, total: int, **extra: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict.fromkeys(search.SUMMARY_COLUMNS)
    base.update(
        id=uuid.UUID(int=n),
        filename=f"{n}.pdf",
        size=n,
        sha256="0" * 64,
        status="ready",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        updated_at=datetime(2024, 1, 1, tzinfo=UTC),
        run_id=ROW,
        total_amount=Decimal("1.50"),
    )
    return SimpleNamespace(
        **{
            **base,
            "total": total,
            "sort_key": n,
            "category_refs": None,
            "snippet": None,
            "role_rank": 3,
            **extra,
        }
    )


def test_a_page_of_rows() -> None:
    cmd = ListDocuments(limit=2, sort="size", order="asc")
    page = search.page_of(cmd, [page_row(1, 3), page_row(2, 3), page_row(3, 3)])  # type: ignore[list-item]
    assert [d.filename for d in page.items] == ["1.pdf", "2.pdf"] and (page.total, page.total_exact) == (
        3,
        True,
    )
    assert page.next_cursor == search.list_cursor("size", "asc", None, 2, uuid.UUID(int=2))
    last = search.page_of(cmd, [page_row(3, 3)])  # type: ignore[list-item]
    assert last.next_cursor is None
    empty = search.page_of(cmd, [SimpleNamespace(total=COUNT_CAP + 1, id=None)])  # type: ignore[list-item]
    assert (empty.items, empty.total, empty.total_exact) == ([], COUNT_CAP, False)
    cat = uuid.uuid4()
    marked = page_row(1, 1, category_refs=[[str(cat), "Tax", "ai"]], snippet="a <b> \x02salary\x03")
    found = search.page_of(ListDocuments(q="salary", sort="relevance"), [marked])  # type: ignore[list-item]
    item = found.items[0]
    assert item.snippet == "a &lt;b&gt; <mark>salary</mark>" and item.rank == 1.0
    assert [(c.id, c.name, c.source) for c in item.categories] == [(cat, "Tax", "ai")]


def test_counts_read_the_owners_statuses_and_include_every_status() -> None:
    compiled = search.counts_statement(CALLER, "mine").compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    assert re.sub(r"\s+", " ", str(compiled)) == (
        f"SELECT {D}.status, count(*) AS n FROM {D} WHERE {D}.owner_id = '{OWNER}' GROUP BY {D}.status"
    )
    counts = search.counts_of([SimpleNamespace(status="ready", n=3), SimpleNamespace(status="failed", n=1)])  # type: ignore[list-item]
    assert counts == DocumentCounts(
        total=4,
        by_status={
            "queued": 0,
            "extracting": 0,
            "ocr": 0,
            "analyzing": 0,
            "ready": 3,
            "needs_ocr": 0,
            "failed": 1,
        },
    )
    schema = DocumentCounts.model_json_schema()["properties"]["by_status"]
    assert schema["required"] == list(get_args(DocumentStatus)) and schema["additionalProperties"] is False


def test_every_status_has_its_place_in_a_run() -> None:
    assert set(STATUS_RANK) == set(get_args(DocumentStatus))


def test_the_editable_fields_are_declared_once() -> None:
    names = list(DocumentFields.model_fields)
    assert [f.value for f in EditableField] == names
    assert list(DocumentFieldsUpdate.model_fields) == names
    assert list(ExtractedFields.model_fields) == [*names, "suggested_categories"]
    assert PROMOTED == tuple(n for n in names if n in documents.c)
    assert set(PROMOTED) == {"document_type", "title", "document_date", "sender", "total_amount", "currency"}


def test_promoted_fields_get_their_column_types() -> None:
    stored = {
        "document_date": {"value": "2024-03-01", "source": "user"},
        "total_amount": {"value": "12.50", "source": "model"},
        "sender": {"value": "ACME", "source": "model"},
        "summary": {"value": "not a column", "source": "model"},
    }
    assert promoted(stored) == {
        "document_type": None,
        "title": None,
        "document_date": date(2024, 3, 1),
        "sender": "ACME",
        "total_amount": Decimal("12.50"),
        "currency": None,
    }
