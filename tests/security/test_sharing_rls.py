"""Row-level security on the documents tables, tested on its own: statements that name no owner at all, run
with the service's own role (which owns the tables), see and change only what whoever acts may — and
nothing without anyone acting. The service's handlers also write the rule into every statement
(services/docs/access.py); these tests leave that out on purpose."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from services.docs import access, tables
from services.docs.access import Caller, acting, as_admin, as_system
from services.kit.db import Database
from services.kit.security import Actor
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh

DOCS_TABLES = (
    "documents",
    "pages",
    "categories",
    "document_categories",
    "tasks",
    "shares",
    "share_links",
    "document_access",
    "document_search",
)


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


@pytest.fixture
async def db(stack: Stack):  # type: ignore[no-untyped-def]
    """The documents service's database with its own role, as the service connects."""
    database = Database(stack.db_urls["docs"], "docs")
    yield database
    await database.dispose()


def caller(user: AppUser, *groups: str, role: str = "user") -> Caller:
    return Caller(
        Actor(user_id=uuid.UUID(user.id), role=role, session_id="t", token=""),
        tuple(uuid.UUID(g) for g in groups),
    )


async def count(s, table: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        (
            await s.execute(select(func.count()).select_from(tables.metadata.tables[f"docs.{table}"]))
        ).scalar_one()
    )


async def test_every_documents_table_forces_row_level_security(db: Database) -> None:
    async with db.session() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = "
                    "current_user AS mine FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'docs' AND c.relkind = 'r'"
                )
            )
        ).all()
        bypass = (
            await s.execute(text("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user"))
        ).scalar()
    by_name = {r.relname: r for r in rows}
    for table in DOCS_TABLES:
        assert by_name[table].relrowsecurity and by_name[table].relforcerowsecurity, table
        assert by_name[table].mine, f"the service's role owns {table}: hence FORCE"
    assert bypass is False


async def test_nobody_acting_sees_no_row_and_writes_none(
    stack: Stack, db: Database, new_user: AppUser
) -> None:
    doc = await h.ready_document(stack, new_user, "secret.pdf", "the secret text")
    async with acting(db, caller(new_user)) as s:
        assert await count(s, "documents") >= 1 and await count(s, "pages") >= 1
    async with db.session() as s:  # no one acting: the settings are not there
        for table in DOCS_TABLES:
            assert await count(s, table) == 0, table
    async with db.transaction() as s:
        gone = await s.execute(delete(tables.documents).where(tables.documents.c.id == doc))
        assert gone.rowcount == 0
        changed = await s.execute(update(tables.pages).values(text="tampered"))
        assert changed.rowcount == 0
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.transaction() as s:
            await s.execute(
                insert(tables.categories).values(id=uuid.uuid4(), owner_id=uuid.UUID(new_user.id), name="x")
            )
    async with acting(db, caller(new_user)) as s:
        assert (
            await s.execute(select(tables.pages.c.text).where(tables.pages.c.document_id == doc))
        ).scalar() == ("the secret text")


async def test_who_acts_ends_with_its_transaction_on_the_pooled_connection(
    stack: Stack, new_user: AppUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who acts (and a list's planning for its values, `list_sources`) is set transaction-locally: the next
    request on the same pooled connection (one connection here) starts with nobody acting and the default
    planning."""
    monkeypatch.setattr(access, "PLANNED_FOR_VALUES_FROM", 1)  # this library is planned for its values
    await h.ready_document(stack, new_user, "mine.pdf", "my text")
    one = Database(stack.db_urls["docs"], "docs", pool_size=1)
    backend = text("select pg_backend_pid()")
    settings = text("select current_setting('atrium.user_id', true), current_setting('plan_cache_mode')")
    try:
        async with acting(one, caller(new_user)) as s:
            await access.list_sources(s, caller(new_user), "all")
            pid = (await s.execute(backend)).scalar_one()
            assert tuple((await s.execute(settings)).one()) == (new_user.id, "force_custom_plan")
            assert await count(s, "documents") >= 1
        async with one.session() as s:
            assert (await s.execute(backend)).scalar_one() == pid
            assert tuple((await s.execute(settings)).one()) in (("", "auto"), (None, "auto"))
            assert await count(s, "documents") == 0
        async with acting(one, caller(new_user), write=True) as s:
            assert (await s.execute(settings)).one()[1] == "auto"
            assert await count(s, "documents") >= 1
        async with one.read() as s:  # autocommit: nobody acts
            assert await count(s, "documents") == 0
    finally:
        await one.dispose()


async def test_the_acting_user_sees_theirs_and_what_is_shared_with_them(
    stack: Stack, http: httpx.AsyncClient, db: Database, new_admin: AppUser
) -> None:
    owner, reader, member, stranger = [await sh.person(stack, http) for _ in range(4)]
    gid = await sh.group(http, new_admin, member)
    shared = await h.ready_document(stack, owner.user, "shared.pdf", "shared text")
    private = await h.ready_document(stack, owner.user, "private.pdf", "private text")
    await sh.share(http, owner, f"documents/{shared}", "viewer", email=reader.email)
    await sh.share(http, owner, f"documents/{shared}", "editor", group_id=gid)
    d, p, ds = tables.documents.c, tables.pages.c, tables.document_search.c

    async def visible(who: Caller) -> set[uuid.UUID]:
        async with acting(db, who) as s:  # no owner in the statement: only the policies decide
            ids = set((await s.execute(select(d.id).where(d.id.in_([shared, private])))).scalars())
            pages = set(
                (await s.execute(select(p.document_id).where(p.document_id.in_([shared, private])))).scalars()
            )
            searched = set(
                (
                    await s.execute(select(ds.document_id).where(ds.document_id.in_([shared, private])))
                ).scalars()
            )
        assert pages == ids and searched == ids
        return ids

    assert await visible(caller(owner.user)) == {shared, private}
    assert await visible(caller(reader.user)) == {shared}
    assert await visible(caller(member.user, gid)) == {shared}
    assert await visible(caller(member.user)) == set()  # the same user, no longer in the group
    assert await visible(caller(stranger.user)) == set()
    assert await visible(caller(new_admin, role="admin")) == set()  # an administrator reads nothing
    async with as_admin(db, caller(new_admin, role="admin")) as s:  # …unless using their powers
        assert set((await s.execute(select(d.id).where(d.id.in_([shared, private])))).scalars()) == {
            shared,
            private,
        }
    async with as_system(db, "pipeline", write=False) as s:
        assert set((await s.execute(select(d.id).where(d.id.in_([shared, private])))).scalars()) == {
            shared,
            private,
        }

    # Writes: a viewer changes nothing, an editor (through the group) may edit, only the owner deletes.
    for who, may_edit in ((caller(reader.user), False), (caller(member.user, gid), True)):
        async with acting(db, who, write=True) as s:
            done = await s.execute(update(tables.documents).where(d.id == shared).values(title="edited"))
            assert done.rowcount == (1 if may_edit else 0)
    async with acting(db, caller(member.user, gid), write=True) as s:
        assert (await s.execute(delete(tables.documents).where(d.id == shared))).rowcount == 0
    # Nobody but the owner (or an administrator) writes a share, whatever the statement says.
    with pytest.raises(DBAPIError, match="row-level security"):
        async with acting(db, caller(reader.user), write=True) as s:
            await s.execute(
                insert(tables.shares).values(
                    id=uuid.uuid4(),
                    owner_id=uuid.UUID(owner.id),
                    document_id=private,
                    grantee_type="user",
                    grantee_id=uuid.UUID(reader.id),
                    role="editor",
                    created_by=uuid.UUID(reader.id),
                )
            )
    async with acting(db, caller(stranger.user)) as s:
        assert await count(s, "shares") == 0 and await count(s, "share_links") == 0
