"""The list statement built once per shape (services/docs/list_statements.py) gives exactly the rows of the
statement built for the request (`search.list_statement`), for every filter, sort and caller, whichever
request built the shape first; one caller's values never reach another's page through a reused statement."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.docs_api import ListDocuments
from services.docs.access import Caller, acting, shared_sources
from services.docs.handlers import search
from services.docs.list_statements import ListStatements
from tests.conftest import AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh

ROWS = [
    ("alpha.pdf", "Invoice for garden tools and seeds", "invoice", date(2024, 1, 10), ["Home"]),
    ("bravo.pdf", "Electricity bill for January", "invoice", date(2024, 2, 1), ["Home", "Bills"]),
    ("charlie.pdf", "Employment contract with salary terms", "contract", date(2023, 6, 15), ["Work"]),
    ("delta.pdf", "Payslip of March salary", "payslip", date(2024, 3, 31), ["Work", "Bills"]),
    ("echo.pdf", "Letter about the garden fence", "letter", None, []),
]


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


async def _library(stack: Stack, http: httpx.AsyncClient, user: AppUser) -> dict[str, str]:
    cats = {}
    for name in ("Home", "Bills", "Work"):
        cats[name] = (await http.post("/categories", headers=user.headers, json={"name": name})).json()["id"]
    for filename, text, kind, when, categories in ROWS:
        await h.ready_document(
            stack, user, filename, text, document_type=kind, document_date=when, categories=categories
        )
    return cats


def _requests(cats: dict[str, str]) -> list[dict[str, Any]]:
    """Lists of many shapes, each shape more than once with other values."""
    now = datetime.now(UTC)
    home, bills, work = (uuid.UUID(cats[n]) for n in ("Home", "Bills", "Work"))
    return [
        {},
        {"limit": 2},
        {"q": "garden"},
        {"q": "salary"},
        {"q": "salary", "sort": "relevance"},
        {"q": "garden", "sort": "relevance"},
        {"q": "  invoice  ", "limit": 20},
        {"document_type": ["invoice"]},
        {"document_type": ["invoice", "payslip"]},
        {"document_type": ["letter"], "status": ["ready"]},
        {"status": ["failed"]},
        {"category_any": [home]},
        {"category_any": [work, bills]},
        {"category_all": [home, bills]},
        {"category_all": [work, bills]},
        {"category_all": [bills, bills]},
        {"category_all": [work], "category_any": [bills]},
        {"date_from": date(2024, 2, 1), "date_to": date(2024, 2, 29)},
        {"date_from": date(2023, 1, 1), "date_to": date(2023, 12, 31)},
        {"uploaded_from": now - timedelta(hours=1), "uploaded_to": now + timedelta(hours=1)},
        {"uploaded_from": now + timedelta(hours=1)},
        {"duplicate": False, "q": "garden"},
        {"duplicate": True},
        {"sort": "filename", "order": "asc"},
        {"sort": "title", "order": "desc", "limit": 3},
        {"sort": "document_date", "order": "asc"},
        {"sender": "acme"},  # built per request (its value is transformed into a pattern)
        {"scope": "mine"},
        {"scope": "shared"},
        {"scope": "shared", "q": "garden"},
    ]


async def _rows(stack: Stack, statement: Any, values: dict[str, Any], caller: Caller) -> list[Any]:
    async with acting(h.deps(stack).db, caller) as s:
        return list((await s.execute(statement, values)).all())


async def test_a_reused_statement_gives_the_rows_of_one_built_for_the_request(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    people = {"ann": await sh.person(stack, http), "bob": await sh.person(stack, http)}
    ann, bob = people["ann"], people["bob"]
    cats = {who: await _library(stack, http, p.user) for who, p in people.items()}
    # Bob shares one document with Ann: her lists (scope all/shared) have a shared branch, his do not.
    bobs = await sh.listed(http, bob, sort="filename", order="asc")
    await sh.share(http, bob, f"documents/{bobs[0]['id']}", "viewer", email=ann.email)
    callers = {who: Caller(await h.actor(stack, p.user)) for who, p in people.items()}
    own_ids = {who: {d["id"] for d in await sh.listed(http, p, scope="mine")} for who, p in people.items()}
    readable = {"ann": own_ids["ann"] | {bobs[0]["id"]}, "bob": own_ids["bob"]}
    cache = ListStatements(h.deps(stack).db.engine.dialect)
    seen_values: dict[str, set[str]] = {}
    compared = 0
    # Ann's and Bob's requests interleaved, each shape first built from one and reused for the other.
    for query in _requests(cats["ann"]):
        for who in ("ann", "bob", "ann") if query else ("bob", "ann", "bob"):
            own = dict(query)
            for field in ("category_any", "category_all"):  # each caller filters by their own categories
                if field in own:
                    names = {uuid.UUID(v): k for k, v in cats["ann"].items()}
                    own[field] = [uuid.UUID(cats[who][names[c]]) for c in own[field]]
            cmd = ListDocuments(**own)
            caller = callers[who]
            async with acting(h.deps(stack).db, caller) as s:
                shared = await shared_sources(s, caller) if cmd.scope != "mine" else None
            statement, values = cache.statement(cmd, caller, shared)
            got = await _rows(stack, statement, values, caller)
            expected = await _rows(stack, search.list_statement(cmd, caller, shared), {}, caller)
            assert [r._asdict() for r in got] == [r._asdict() for r in expected], (who, query)
            page = search.page_of(cmd, got)
            # Every row is the caller's own or one shared with them: never the other's unshared documents.
            assert {str(item.id) for item in page.items} <= readable[who], query
            seen_values.setdefault(str(sorted(query)), set()).add(repr(sorted(values.items(), key=str)))
            compared += 1
    requests = len(_requests(cats["ann"]))
    assert compared == 3 * requests
    # Shapes were reused — Ann's second request of each kind, and requests of one shape with other values
    # ("garden" and "salary") never built one — and a reused statement ran with each caller's values.
    assert cache.built < 2 * requests
    assert any(len(v) > 1 for v in seen_values.values())


async def test_no_made_up_value_is_left_in_a_reused_statement(stack: Stack, http: httpx.AsyncClient) -> None:
    """Every value a shape was built from is replaced by the request's: run with the values, the statement's
    parameters hold only the request's (or constants), never the made-up ones."""
    user = await register_and_login(http)
    caller = Caller(await h.actor(stack, user))
    dialect = h.deps(stack).db.engine.dialect
    cache = ListStatements(dialect)
    home = uuid.uuid4()
    cmd = ListDocuments(
        q="garden",
        document_type=["invoice"],
        category_all=[home],
        date_from=date(2024, 1, 1),
        uploaded_to=datetime(2030, 1, 1, tzinfo=UTC),
    )
    statement, values = cache.statement(cmd, caller, None)
    compiled = statement.compile(dialect=dialect)
    merged = {**compiled.params, **values}
    assert merged.keys() == compiled.params.keys()
    assert values  # the request's values are bound by name
    assert set(map(repr, merged.values())) >= {
        repr("garden"),
        repr(["invoice"]),
        repr(home),
        repr(date(2024, 1, 1)),
        repr(caller.user_id),
    }
    assert not any("made-up" in repr(v) or "madeup" in repr(v) for v in merged.values())
    # The same request built for itself has the same parameters with the same values.
    direct = search.list_statement(cmd, caller, None).compile(dialect=dialect)
    assert str(direct) == str(compiled)
    assert direct.params == merged


async def test_a_small_library_with_nothing_shared_is_planned_once_a_large_one_for_its_values(
    stack: Stack, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`list_sources` sets how the list is planned in its transaction: generic plans (PostgreSQL's `auto`) for
    a caller owning fewer than PLANNED_FOR_VALUES_FROM documents with nothing shared in the list, plans for
    the values (`force_custom_plan`) for a larger library or with shared documents."""
    from sqlalchemy import text

    from services.docs import access

    monkeypatch.setattr(access, "PLANNED_FOR_VALUES_FROM", 3)
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    docs = [str((await h.create(stack, owner.user, f"{i}.pdf")).document.id) for i in range(2)]
    db = h.deps(stack).db
    setting = text("SELECT current_setting('plan_cache_mode')")

    async def planning(who: sh.Person, scope: str) -> tuple[str, bool]:
        caller = Caller(await h.actor(stack, who.user))
        async with acting(db, caller) as s:
            shared = await access.list_sources(s, caller, scope)
            return (await s.execute(setting)).scalar_one(), shared is not None

    assert await planning(owner, "all") == ("auto", False)  # 2 documents, nothing shared
    assert await planning(reader, "all") == ("auto", False)  # none
    await sh.share(http, owner, f"documents/{docs[0]}", "viewer", email=reader.email)
    assert await planning(reader, "all") == ("force_custom_plan", True)
    assert await planning(reader, "shared") == ("force_custom_plan", True)
    assert await planning(reader, "mine") == ("auto", False)  # the shared documents are not in it
    await h.create(stack, owner.user, "2.pdf")
    for scope in ("all", "mine"):
        assert await planning(owner, scope) == ("force_custom_plan", False)  # 3 documents
    # And a list still reads the same rows either way.
    r = await http.get("/documents", headers=await reader.headers(), params={"scope": "all"})
    assert [d["id"] for d in r.json()["items"]] == [docs[0]]
