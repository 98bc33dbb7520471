"""The list statement, built without a database: filters, sort keys, the keyset cursor, the capped count,
relevance over the newest candidates and snippets (docs/architecture.md, "Listing and search", says why
each is so; `bench/bench_list.py` measures it). `documents.list_documents` runs it.

One statement per page — the page, the total, each row's categories and, when searching, the snippets of
the page's rows only — so a page is one round trip.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, get_args
from uuid import UUID

from sqlalchemy import (
    JSON,
    ColumnElement,
    Double,
    FromClause,
    Select,
    and_,
    any_,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    tuple_,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on

from contracts import Invalid
from contracts.docs_api import (
    COUNT_CAP,
    AccessRole,
    CategoryRefPublic,
    DocumentCounts,
    DocumentFilter,
    DocumentPage,
    ListDocuments,
    PersonPublic,
    Scope,
    SortKey,
)
from contracts.documents import DocumentStatus
from services.kit.cursor import CursorType, CursorValue, decode_cursor, encode_cursor, invalid_cursor

from ..access import ROLE_RANK, Branch, Caller, readable, shared_with
from ..rows import AnyRow, SummaryRow
from ..tables import (
    SEARCH_CONFIG,
    categories,
    directory,
    document_categories,
    document_search,
    documents,
    pages,
)
from .views import summary

# Relevance ranks the newest matches only (ranking reads each one's vector): the caller's own newest
# RANK_CANDIDATES, and of the documents shared with them the newest RANK_CANDIDATES no older than the oldest of
# those own ones (`_own_floor`) — the candidates are every match since a moment, whoever owns them.
RANK_CANDIDATES = 500
SNIPPET_TEXT_CHARS = 20_000  # of the matching page (a page with more text is rare: tables, hostile files)

_REGCONFIG: ColumnElement[Any] = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
_DOCUMENT_DATE: ColumnElement[Any] = func.coalesce(
    documents.c.document_date, literal_column("DATE '0001-01-01'")
)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like(value: str) -> str:
    """`value` anywhere, as a LIKE pattern (escape `\\`)."""
    return "%" + _escape_like(value) + "%"


def _prefix(value: str) -> str:
    return _escape_like(value) + "%"


def _tsquery(q: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(_REGCONFIG, q)


def query_text(f: DocumentFilter) -> str | None:
    return f.q.strip() if f.q and f.q.strip() else None


@dataclass(frozen=True)
class AccessBranch:
    """Documents a list reads in one go (in index order), and the caller's role on them (`rank`: ROLE_RANK
    of a row's, given its id, when it is not the same for all)."""

    condition: ColumnElement[bool]
    role: AccessRole
    rank: Callable[[ColumnElement[Any]], ColumnElement[Any]] | None = None
    shared: Branch | None = None  # the documents of others shared with the caller, read in list order

    def rank_of(self, doc_id: ColumnElement[Any]) -> ColumnElement[Any]:
        return self.rank(doc_id) if self.rank else literal(ROLE_RANK[self.role])


def access_branches(
    scope: Scope,
    caller: Caller,
    shared: Branch | None,
) -> list[AccessBranch]:
    """Whose documents a list covers, one branch each: the caller's own (read through the `(owner, key, id)`
    indexes, a page's worth) and the documents shared with them (`shared`: their sort keys read from
    `document_access` and sorted, then documents probed in that order until a page matches, see
    `_shared_matches`). A page is cut from each branch and merged: an OR of them would lose the index order."""
    d = documents.c
    branches: list[AccessBranch] = []
    if scope in ("all", "mine"):
        branches.append(AccessBranch(d.owner_id == caller.user_id, "owner"))
    if scope in ("all", "shared"):
        if shared is not None:
            branches.append(
                AccessBranch(
                    and_(shared.condition(), d.owner_id != caller.user_id), shared.role, shared.rank, shared
                )
            )
    if not branches:  # only shared documents asked for, and there are none
        branches.append(AccessBranch(false(), "viewer"))
    return branches


def access_condition(scope: Scope, caller: Caller) -> ColumnElement[bool]:
    """Whose documents, as one condition (bulk actions: no index order needed, no set read first)."""
    if scope == "mine":
        return documents.c.owner_id == caller.user_id
    if scope == "shared":
        return shared_with(caller)
    return readable(caller)


def filter_conditions(f: DocumentFilter, access: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    d = documents.c
    conds: list[ColumnElement[bool]] = [access]
    if f.status:
        conds.append(d.status.in_(f.status))
    if f.document_type:
        conds.append(d.document_type.in_(f.document_type))
    conds += _category_conditions(f, d.id)
    if f.sender:
        # "Starts with", ignoring case: served by the (owner, lower(sender)) index.
        conds.append(func.lower(d.sender).like(_prefix(f.sender.strip().lower()), escape="\\"))
    if f.date_from or f.date_to:
        # Written as the sort expression so the (owner, document date) index serves the range.
        when = _DOCUMENT_DATE
        conds.append(d.document_date.isnot(None))
        if f.date_from:
            conds.append(when >= f.date_from)
        if f.date_to:
            conds.append(when <= f.date_to)
    if f.uploaded_from:
        conds.append(d.created_at >= f.uploaded_from)
    if f.uploaded_to:
        conds.append(d.created_at <= f.uploaded_to)
    if f.duplicate is not None:
        conds.append(d.duplicate_of.isnot(None) if f.duplicate else d.duplicate_of.is_(None))
    q = query_text(f)
    if q:
        # The vectors are in `document_search` (one row per document, read by primary key here).
        s = document_search.c
        conds.append(
            select(literal(1))
            .where(s.document_id == d.id, s.owner_id == d.owner_id, s.search.op("@@")(_tsquery(q)))
            .correlate(documents)
            .exists()
        )
    return conds


def _category_conditions(
    f: DocumentFilter, doc_id: ColumnElement[Any], *, hashed: bool = False
) -> list[ColumnElement[bool]]:
    """Filed under any of `category_any` and each of `category_all`: semi-joins, or with `hashed` a test of
    each row against the hashed filings of each (`IS TRUE` keeps the planner from turning it into a join, so
    a walk in list order stays in order and stops after a page)."""
    link = document_categories.c
    conds: list[ColumnElement[bool]] = []
    if f.category_any:
        conds.append(doc_id.in_(select(link.document_id).where(link.category_id.in_(f.category_any))))
    for category_id in dict.fromkeys(f.category_all):
        # One hashed semi-join per category (measured faster than grouping all links and counting).
        conds.append(doc_id.in_(select(link.document_id).where(link.category_id == category_id)))
    return [c.is_(true()) for c in conds] if hashed else conds


# The filters a search of the caller's own documents can apply on `document_search` alone.
_ON_SEARCH_ROWS = {
    "scope",
    "q",
    "document_type",
    "category_any",
    "category_all",
    "uploaded_from",
    "uploaded_to",
}


def own_search_conditions(cmd: ListDocuments, owner: UUID) -> list[ColumnElement[bool]] | None:
    """A search of `owner`'s own documents, newest first or by relevance, as conditions on `document_search`
    alone: its candidates, count and page are read from those narrow rows (~70 a heap page) and the page's
    documents rows by id after. None when a filter or the sort needs the documents row."""
    q = query_text(cmd)
    if not q or cmd.sort not in ("uploaded_at", "relevance"):
        return None
    if any(
        getattr(cmd, name) not in (None, [])
        for name in DocumentFilter.model_fields
        if name not in _ON_SEARCH_ROWS
    ):
        return None
    s = document_search.c
    conds = [s.owner_id == owner, s.search.op("@@")(_tsquery(q))]
    if cmd.document_type:
        conds.append(s.document_type.in_(cmd.document_type))
    conds += _category_conditions(cmd, s.document_id)
    if cmd.uploaded_from:
        conds.append(s.created_at >= cmd.uploaded_from)
    if cmd.uploaded_to:
        conds.append(s.created_at <= cmd.uploaded_to)
    return conds


def _sort_expression(sort: SortKey, q: str | None, ranked: FromClause = documents) -> ColumnElement[Any]:
    """The sort key; relevance ranks the rows of `ranked` (the candidates), every other key is indexed."""
    d = documents.c
    if sort == "relevance":
        if not q:
            raise Invalid(
                "Sorting by relevance needs a search text (q).", [{"field": "sort", "message": "needs q"}]
            )
        return cast(func.ts_rank(ranked.c.rank_vector, _tsquery(q)), Double)
    keys: dict[str, ColumnElement[Any]] = {
        "uploaded_at": d.created_at,
        "document_date": _DOCUMENT_DATE,
        "title": func.lower(func.coalesce(d.title, d.filename)),
        "filename": func.lower(d.filename),
        "size": d.size,
        "status": d.status,
    }
    return keys[sort]


# What a cursor's sort value is read back as (the rest are text).
_CURSOR_TYPES: dict[str, CursorType] = {
    "uploaded_at": datetime,
    "document_date": date,
    "relevance": float,
    "size": int,
}


def list_cursor(sort: SortKey, order: str, q: str | None, value: CursorValue, row_id: UUID) -> str:
    """The position after a row (its sort value and id), valid only for the same sort, order and search."""
    return encode_cursor([value, row_id], bound_to=[sort, order, q or ""])


def _cursor_position(cursor: str, sort: SortKey, order: str, q: str | None) -> tuple[CursorValue, UUID]:
    value, row_id = decode_cursor(
        cursor, (_CURSOR_TYPES.get(sort, str), UUID), bound_to=[sort, order, q or ""]
    )
    if value is None or not isinstance(row_id, UUID):  # no sort key is ever NULL (see _sort_expression)
        raise invalid_cursor()
    return value, row_id


def _snippet(raw: str | None) -> str | None:
    if not raw:
        return None
    return html.escape(raw).replace("\x02", "<mark>").replace("\x03", "</mark>")


# What a list row shows (`views.summary`): no text, vector or JSON (AI fields, PDF metadata) is read for a page.
SUMMARY_COLUMNS = tuple(SummaryRow.__annotations__)


def _candidate_columns(cmd: ListDocuments) -> list[ColumnElement[Any]]:
    """What a page's candidate rows carry: the summary, and what relevance ranks."""
    d = documents.c
    ranked: list[ColumnElement[Any]] = [document_search.c.rank_vector] if cmd.sort == "relevance" else []
    return [d[name] for name in SUMMARY_COLUMNS] + ranked


def _with_rank_vector(cmd: ListDocuments, source: FromClause) -> FromClause:
    """`source` (documents joined in) with what relevance ranks: the document's `document_search` row."""
    if cmd.sort != "relevance":
        return source
    return source.join(document_search, document_search.c.document_id == documents.c.id)


def _page_source(
    cmd: ListDocuments, conds: list[ColumnElement[bool]], shared_matches: FromClause | None = None
) -> tuple[FromClause, list[ColumnElement[bool]]]:
    """What a page is cut from, and the conditions still to apply there (`shared_matches`: the shared
    branch's, already filtered and in list order — or newest first when ranking)."""
    if cmd.sort != "relevance":
        return (documents, list(conds)) if shared_matches is None else (shared_matches, [])
    # Ranking reads each candidate's whole tsvector, so only the newest RANK_CANDIDATES matches are ranked;
    # they are picked and ranked in one pass (the page is cut from them with no second look at the table).
    if shared_matches is not None:  # already newest first (PostgreSQL 17 knows a CTE's order: no sort)
        m = shared_matches.c
        newest_shared = select(shared_matches).order_by(m.sort_key.desc(), m.id.desc()).limit(RANK_CANDIDATES)
        return newest_shared.subquery("shared_candidates"), []
    d = documents.c
    newest = (
        select(*_candidate_columns(cmd))
        .select_from(_with_rank_vector(cmd, documents))
        .where(*conds)
        .order_by(d.created_at.desc(), d.id.desc())
        .limit(RANK_CANDIDATES)
    )
    return newest.subquery("candidates"), []


# The column of `document_access` (migration 0015) holding each sort key's value (relevance ranks the newest).
SHARED_SORT_COLUMNS: dict[str, str] = {
    "uploaded_at": "created_at",
    "document_date": "document_date_key",
    "title": "title_key",
    "filename": "filename_key",
    "size": "size",
    "status": "status",
    "relevance": "created_at",
}


def _shared_matches(
    cmd: ListDocuments,
    shared: Branch,
    conds: list[ColumnElement[bool]],
    floor: ColumnElement[Any] | None = None,
    *,
    before: bool = False,
    words_first: bool = False,
) -> FromClause:
    """The shared documents matching the filters (`conds`; with `words_first` a search's words are tested here,
    on the access rows: `_shared_words_match`), each once, in list order (newest first when ranking): their
    sort keys come from `document_access` alone, sorted, and the documents are probed in that order — a
    page stops after its rows, the capped count reads on from the same rows (never a second probe).
    With a `floor` (ranking: `_own_floor`) only those uploaded since then (the candidates), or `before` it
    (what the count reads on with): cut in the access rows' walk, so the two never probe a document twice
    and a page's candidates never probe an older one."""
    descending = cmd.order == "desc" or cmd.sort == "relevance"
    keys = shared.in_order(SHARED_SORT_COLUMNS[cmd.sort], descending=descending)
    k = keys.c
    order = (k.sort_key.desc(), k.id.desc()) if descending else (k.sort_key.asc(), k.id.asc())
    window = [] if floor is None else [k.sort_key < floor if before else k.sort_key >= floor]
    # The words are tested on the access rows, before their documents are read (each under its row policy).
    q = query_text(cmd)
    words = [_shared_words_match(shared, q, k.id)] if q and words_first else []
    matches = (
        select(*_candidate_columns(cmd), k.sort_key)
        .select_from(_with_rank_vector(cmd, keys.join(documents, documents.c.id == k.id)))
        .where(*window, *words, *conds)
        .order_by(*order)
    )
    return matches.subquery("shared_before") if before else matches.cte("shared_matches")


def _shared_words_match(shared: Branch, q: str, doc_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """The row is one of the documents shared with the caller whose words match `q`, as a test against their
    hashed ids: those documents' `document_search` rows are read once, for the array of every shared id
    (PostgreSQL ANDs the primary key's bitmap of them with the words' GIN bitmap), before the walk in list
    order. Probing each shared document's row in list order instead read its index, heap and out-of-line
    vector one document at a time (8.3 buffers each: 30 of 43 ms for 5,389 shared documents, 554 matching);
    this reads the matches in ~13 ms of a 24 ms statement."""
    s = document_search.c
    every_shared = func.array(shared.ids().scalar_subquery())
    hits = select(s.document_id).where(s.document_id == any_(every_shared), s.search.op("@@")(_tsquery(q)))
    return doc_id.in_(hits).is_(true())  # IS TRUE: a hashed test, not a join the walk would lose


def _own_floor(own_candidates: FromClause) -> ColumnElement[Any]:
    """When the caller's own search has RANK_CANDIDATES matches or more: the upload time of the oldest own one
    ranked — a shared match older than that would not be among the newest matches; else the beginning of
    time (every shared match may be)."""
    c = own_candidates.c
    oldest = select(func.min(c.created_at)).having(func.count() >= RANK_CANDIDATES).scalar_subquery()
    return func.coalesce(oldest, literal_column("'-infinity'::timestamptz"))


def _first_matching_page(doc_id: ColumnElement[Any], q: str) -> ColumnElement[Any]:
    """The text a search snippet is cut from: the document's first page that matches. Headlining costs in
    proportion to the text (about 17 ms per 100,000 characters), so never the whole document; a match only
    in the title, sender or filename has no such page, and the title or filename is headlined instead."""
    pg = pages.c
    return (
        select(func.left(pg.text, SNIPPET_TEXT_CHARS))
        .where(pg.document_id == doc_id, pg.search.op("@@")(_tsquery(q)))
        .order_by(pg.number)
        .limit(1)
        .scalar_subquery()
    )


def _after_cursor(
    cmd: ListDocuments, q: str | None, key: ColumnElement[Any], row_id: ColumnElement[Any]
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[Any]]]:
    """The keyset condition of a page after the cursor's row, and the page's order."""
    after: list[ColumnElement[bool]] = []
    if cmd.cursor:
        value, last_id = _cursor_position(cmd.cursor, cmd.sort, cmd.order, q)
        pair, bound = tuple_(key, row_id), tuple_(literal(value), literal(last_id))
        after.append(pair < bound if cmd.order == "desc" else pair > bound)
    return after, _in_list_order(cmd, key, row_id)


def _in_list_order(cmd: ListDocuments, key: ColumnElement[Any], row_id: ColumnElement[Any]) -> list[Any]:
    return [key.desc(), row_id.desc()] if cmd.order == "desc" else [key.asc(), row_id.asc()]


def _own_candidates(conds: list[ColumnElement[bool]]) -> Select[Any]:
    """The caller's own newest RANK_CANDIDATES matches that relevance ranks, from `document_search` rows."""
    s = document_search.c
    return (
        select(s.document_id, s.created_at, s.rank_vector)
        .where(*conds)
        .order_by(s.created_at.desc(), s.document_id.desc())
        .limit(RANK_CANDIDATES)
    )


def _own_search_page(
    cmd: ListDocuments, conds: list[ColumnElement[bool]], q: str, candidates: FromClause | None = None
) -> Select[Any]:
    """The caller's own rows of a search page (`own_search_conditions`): the page's ids cut from the narrow
    `document_search` rows (newest first, or the newest RANK_CANDIDATES ranked: `candidates`, or
    `_own_candidates`), then their documents rows."""
    s = document_search.c
    if cmd.sort != "relevance":
        return _ids_then_rows(cmd, document_search, s.document_id, s.created_at, conds, q)
    if candidates is None:
        candidates = _own_candidates(conds).subquery("candidates")
    key = _sort_expression(cmd.sort, q, candidates)
    return _ids_then_rows(cmd, candidates, candidates.c.document_id, key, [], q)


def filed_conditions(cmd: ListDocuments, owner: UUID) -> list[ColumnElement[bool]] | None:
    """The caller's own documents filed under each of some categories (all-of), newest first, without a search
    or a sender: every
    condition is on the (owner, created_at, id) index (status, type, document date and duplicate are in it)
    or a test against the hashed filings, so the page's ids are an index-only walk in list order that stops
    after a page, and the count one that stops at the cap; None for any other list. (As semi-joins, the
    filings of an all-of were merge-joined whole and every filed document read and sorted: ~2,300 heap rows
    for bench_list's two categories. An any-of of dense categories stays a semi-join probed row by row in list
    order: hashing its ~30,000 filings, each through their row-level policy, cost more than the walk.)"""
    if not cmd.category_all or cmd.sort != "uploaded_at" or cmd.sender or query_text(cmd):
        return None
    unfiled = cmd.model_copy(update={"category_any": [], "category_all": []})
    own = documents.c.owner_id == owner
    return filter_conditions(unfiled, own) + _category_conditions(cmd, documents.c.id, hashed=True)


def _ids_then_rows(
    cmd: ListDocuments,
    source: FromClause,
    row_id: ColumnElement[Any],
    key: ColumnElement[Any],
    conds: list[ColumnElement[bool]],
    q: str | None,
) -> Select[Any]:
    """A page cut as ids (and sort keys) from `source`, then the page's documents rows by id."""
    after, ordering = _after_cursor(cmd, q, key, row_id)
    hits = (
        select(row_id.label("id"), key.label("sort_key"))
        .select_from(source)
        .where(*conds, *after)
        .order_by(*ordering)
        .limit(cmd.limit + 1)
        .subquery("hits")
    )
    d = documents.c
    return (
        select(*[d[name] for name in SUMMARY_COLUMNS], hits.c.sort_key)
        .join_from(hits, documents, d.id == hits.c.id)
        .order_by(*_in_list_order(cmd, hits.c.sort_key, hits.c.id))
    )


def _branch_page(
    cmd: ListDocuments,
    conds: list[ColumnElement[bool]],
    q: str | None,
    shared_matches: FromClause | None = None,
) -> Select[Any]:
    """One branch's rows of the page, in order, one more than the limit."""
    source, page_conds = _page_source(cmd, conds, shared_matches)
    c = source.c
    key = (
        c.sort_key
        if shared_matches is not None and cmd.sort != "relevance"
        else _sort_expression(cmd.sort, q, source)
    )
    after, ordering = _after_cursor(cmd, q, key, c.id)
    page_conds += after
    shown = [c[name] for name in SUMMARY_COLUMNS]
    return (
        select(*shown, key.label("sort_key"))
        .select_from(source)
        .where(*page_conds)
        .order_by(*ordering)
        .limit(cmd.limit + 1)
    )


def list_statement(cmd: ListDocuments, caller: Caller, shared: Branch | None = None) -> Select[Any]:
    """The one statement of a page: a row per listed document (sort key, categories, snippet, the caller's
    role and the owner of a shared one) each carrying the capped total, or a single row of the total with
    NULLs when nothing is on the page. With shared documents, each branch gives its own first rows (and
    capped count); a document reached twice is listed once, with the caller's best role, and the page is
    the first of them all."""
    q = query_text(cmd)
    branches = access_branches(cmd.scope, caller, shared)
    conditions = [filter_conditions(cmd, b.condition) for b in branches]
    filters = filter_conditions(cmd, true())[1:]
    # The caller's own page, when it can be cut as ids first: from the narrow search rows (a search), or
    # from the list-order index (filed under categories).
    own = own_search_conditions(cmd, caller.user_id) if branches[0].role == "owner" else None
    filed = filed_conditions(cmd, caller.user_id) if branches[0].role == "owner" else None
    if filed is not None:
        conditions[0] = filed
    # Ranking their own search and shared documents: the caller's candidates once (a CTE), and only the shared
    # matches at least as new as the oldest of them are probed and ranked (`_own_floor`); the count reads the
    # older ones after them.
    own_candidates = floor = None
    if cmd.sort == "relevance" and own is not None and q and len(branches) > 1:
        own_candidates = _own_candidates(own).cte("own_candidates")
        floor = _own_floor(own_candidates)
    # A search of only what is shared with the caller reads every shared match (its count), so the words are
    # tested for all shared documents at once (`_shared_words_match`; 5,389 shared, 554 matching: 48 → 30 ms
    # median). Beside the caller's own documents the walk usually stops early (their matches fill the page and
    # the count), and each shared document probed in list order costs less than testing them all (A/B,
    # bench_sharing 100k: common word 29 → 36 ms, two words 33 → 42 ms, rare word 10 → 15 ms had it done so).
    words_first = cmd.scope == "shared" and q is not None
    shared_filters = (
        filter_conditions(cmd.model_copy(update={"q": None}), true())[1:] if words_first else filters
    )
    matched = [
        _shared_matches(cmd, b.shared, shared_filters, floor, words_first=words_first) if b.shared else None
        for b in branches
    ]
    older = [
        _shared_matches(cmd, b.shared, shared_filters, floor, before=True, words_first=words_first)
        if b.shared and floor is not None
        else None
        for b in branches
    ]
    pages_: list[Select[Any]] = []
    for conds, b, shared_page in zip(conditions, branches, matched, strict=True):
        if b.role == "owner" and own is not None and q:
            pages_.append(_own_search_page(cmd, own, q, own_candidates))
        elif b.role == "owner" and filed is not None:
            pages_.append(_ids_then_rows(cmd, documents, documents.c.id, documents.c.created_at, conds, None))
        else:
            pages_.append(_branch_page(cmd, conds, q, shared_page))
    if len(pages_) == 1 and branches[0].rank is None:  # one role for every row (the caller's own, e.g.)
        page = pages_[0].subquery("page")
        role_rank: ColumnElement[Any] = literal(ROLE_RANK[branches[0].role])
    else:
        ranked = [
            p.add_columns(b.rank_of(p.selected_columns.id).label("role_rank"))
            for p, b in zip(pages_, branches, strict=True)
        ]
        merged = union_all(*ranked).subquery("branches")
        m = merged.c
        best = select(merged).ext(distinct_on(m.id)).order_by(m.id, m.role_rank.desc()).subquery("reached")
        r = best.c
        page = (
            select(best)
            .order_by(*_in_list_order(cmd, r.sort_key, r.id))
            .limit(cmd.limit + 1)
            .subquery("page")
        )
        role_rank = page.c.role_rank
    p = page.c
    counted = (
        select(func.count().label("total"))
        .select_from(_capped_matches(conditions, matched, branches, bool(filters), own, older))
        .subquery("counted")
    )
    link = document_categories.c
    category_refs = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(categories.c.id, categories.c.name, link.source),
                    func.lower(categories.c.name),
                )
            )
        )
        .join_from(document_categories, categories, categories.c.id == link.category_id)
        # Categories are personal: the caller's own filing of the row, whoever owns the document.
        .where(link.document_id == p.id, categories.c.owner_id == caller.user_id)
        .scalar_subquery()
    )
    snippet = (
        func.ts_headline(
            _REGCONFIG,
            func.coalesce(_first_matching_page(p.id, q), p.title, p.filename),
            _tsquery(q),
            "StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=10, MaxFragments=2",
        )
        if q
        else null()
    )
    sharing: list[ColumnElement[Any]] = [role_rank.label("role_rank")]
    source: FromClause = counted.outerjoin(page, true())
    if len(branches) > 1 or cmd.scope == "shared":  # who shared each listed document with the caller
        owner = directory.alias("owner")
        source = source.outerjoin(owner, and_(owner.c.user_id == p.owner_id, p.owner_id != caller.user_id))
        sharing += [owner.c.email.label("owner_email"), owner.c.name.label("owner_name")]
    return (
        select(
            counted.c.total,
            *[p[name] for name in SUMMARY_COLUMNS],
            p.sort_key,
            type_coerce(category_refs, JSON).label("category_refs"),
            snippet.label("snippet"),
            *sharing,
        )
        .select_from(source)
        .order_by(*_in_list_order(cmd, p.sort_key, p.id))
    )


def _capped_matches(
    conditions: list[list[ColumnElement[bool]]],
    shared_matches: list[FromClause | None],
    branches: list[AccessBranch],
    filtered: bool,
    own_search: list[ColumnElement[bool]] | None = None,
    shared_older: list[FromClause | None] | None = None,
) -> FromClause:
    """The ids counted, stopping past the cap: an exact count of 100,000 matches costs more than the page.
    The caller's own come first: when they reach the cap, the shared ones are never read. Shared documents
    are counted from `document_access` alone when nothing but access is asked (no document is probed), else
    the shared branch's matches are read on from where its page stopped (each document probed once). A search
    of their own (`own_search`) counts the narrow search rows, not the documents rows. `shared_older`: the
    shared matches older than a ranking's floor, read after those of the page's candidates (`_shared_matches`)."""
    capped: list[Select[Any]] = []
    older = shared_older or [None] * len(branches)
    for conds, matches, b, before in zip(conditions, shared_matches, branches, older, strict=True):
        if matches is None:
            capped.append(select(documents.c.id).where(*conds).limit(COUNT_CAP + 1))
        elif b.shared is not None and not filtered:
            capped.append(b.shared.ids().limit(COUNT_CAP + 1))
        elif before is not None:
            both = union_all(select(matches.c.id), select(before.c.id)).subquery("shared_both")
            capped.append(select(both.c.id).limit(COUNT_CAP + 1))
        else:
            capped.append(select(matches.c.id).limit(COUNT_CAP + 1))
    if own_search is not None:
        s = document_search.c
        capped[0] = select(s.document_id.label("id")).where(*own_search).limit(COUNT_CAP + 1)
    if len(capped) == 1:
        return capped[0].subquery("matches")
    both = union_all(*capped).subquery("both")
    return select(both.c.id).limit(COUNT_CAP + 1).subquery("matches")


ROLES_BY_RANK: dict[int, AccessRole] = {rank: role for role, rank in ROLE_RANK.items()}


def _sharing_of(row: AnyRow) -> tuple[AccessRole, PersonPublic | None]:
    """The caller's role on a listed row and, when it is shared with them, who shared it."""
    role = ROLES_BY_RANK[row.role_rank]
    if role == "owner":
        return "owner", None
    return role, PersonPublic(id=row.owner_id, email=row.owner_email, name=row.owner_name)


def page_of(cmd: ListDocuments, result: Sequence[AnyRow]) -> DocumentPage:
    """The reply for the rows `list_statement` gave (one more than the limit tells that a next page exists)."""
    total = result[0].total
    rows = [r for r in result if r.id is not None]
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    items = []
    for r in rows:
        role, shared_by = _sharing_of(r)
        items.append(
            summary(
                r,
                [CategoryRefPublic(id=i, name=n, source=src) for i, n, src in r.category_refs or []],
                rank=r.sort_key if cmd.sort == "relevance" else None,
                snippet=_snippet(r.snippet),
                role=role,
                shared_by=shared_by,
            )
        )
    q = query_text(cmd)
    next_cursor = (
        list_cursor(cmd.sort, cmd.order, q, rows[-1].sort_key, rows[-1].id) if more and rows else None
    )
    return DocumentPage(
        items=items, total=min(total, COUNT_CAP), total_exact=total <= COUNT_CAP, next_cursor=next_cursor
    )


def counts_statement(caller: Caller, scope: Scope = "mine", shared: Branch | None = None) -> Select[Any]:
    """The caller's documents per status: for their own, an index-only scan of the (owner, status, …) index,
    already in status order, so no sort (20,000 documents of one owner: 24 ms cold, on a loaded 2-core
    machine); shared documents (each once, however many shares reach it) are added, counted from the status
    `document_access` copies (the grantee index alone)."""
    d = documents.c
    branches = access_branches(scope, caller, shared)
    per_branch = [
        select(d.status, func.count().label("n")).where(b.condition).group_by(d.status)
        for b in branches
        if b.role == "owner"
    ]
    for b in branches:
        if b.shared is not None:  # the copied status (migration 0015): no shared document is probed
            per_branch.append(b.shared.per_status())
    others = [select(d.id).where(b.condition) for b in branches if b.role != "owner" and b.shared is None]
    if others:
        reached = (union(*others) if len(others) > 1 else others[0]).subquery("reached")
        per_branch.append(
            select(d.status, func.count().label("n")).where(d.id.in_(select(reached.c.id))).group_by(d.status)
        )
    if len(per_branch) == 1:
        return per_branch[0]
    both = union_all(*per_branch).subquery("branches")
    return select(both.c.status, func.sum(both.c.n).label("n")).group_by(both.c.status)


def counts_of(rows: Sequence[AnyRow]) -> DocumentCounts:
    by_status: dict[DocumentStatus, int] = dict.fromkeys(get_args(DocumentStatus), 0)
    for r in rows:
        by_status[r.status] = int(r.n)
    return DocumentCounts(total=sum(by_status.values()), by_status=by_status)
