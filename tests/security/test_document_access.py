"""`docs.document_access` — what each share reaches, materialised by triggers (migration 0014) for row-level
security and the service's statements — always equals what the shares and filings say, after every kind of
change (sharing, a role change, filing and unfiling, revoking, an administrator's share, deleting a category
or a document), in the same transaction; and nobody but the triggers writes it."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from services.docs import tables
from services.docs.access import acting, as_admin, as_system
from services.kit.db import Database
from tests.conftest import AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh
from tests.security.test_sharing_rls import caller

# The definition the triggers keep: a share reaches its document, or each document its owner filed under
# its category — the owner's own documents only — with the document's values of the list's sort keys, as
# handlers/search.py sorts by them (migration 0015).
SORT_KEYS = (
    "d.created_at, COALESCE(d.document_date, DATE '0001-01-01'), lower(COALESCE(d.title, d.filename)),"
    " lower(d.filename), d.size, d.status"
)
REACHED = text(
    f"SELECT s.id, d.id, s.grantee_id, d.owner_id, s.role, {SORT_KEYS} FROM docs.shares s"
    " JOIN docs.documents d ON d.id = s.document_id AND d.owner_id = s.owner_id"
    f" UNION ALL SELECT s.id, d.id, s.grantee_id, d.owner_id, s.role, {SORT_KEYS} FROM docs.shares s"
    " JOIN docs.document_categories dc ON dc.category_id = s.category_id AND dc.owner_id = s.owner_id"
    " JOIN docs.documents d ON d.id = dc.document_id AND d.owner_id = dc.owner_id"
)


@pytest.fixture(autouse=True)
def needs_services(stack: Stack) -> None:
    if not {"auth", "permissions", "docs"} <= set(stack.services):
        pytest.skip("needs the auth, permissions and docs services")


@pytest.fixture
async def db(stack: Stack):  # type: ignore[no-untyped-def]
    database = Database(stack.db_urls["docs"], "docs")
    yield database
    await database.dispose()


async def in_step(db: Database, owner_ids: set[uuid.UUID]) -> set[tuple[object, ...]]:
    """The materialised rows of these owners' shares, asserted equal to the definition; returned."""
    a = tables.document_access.c
    async with as_system(db, "directory", write=False) as s:
        kept = {
            tuple(r)
            for r in (
                await s.execute(
                    select(
                        a.share_id,
                        a.document_id,
                        a.grantee_id,
                        a.owner_id,
                        a.role,
                        *[a[name] for name in tables.ACCESS_SORT_KEYS],
                    ).where(a.owner_id.in_(owner_ids))
                )
            ).all()
        }
        wanted = {tuple(r) for r in (await s.execute(REACHED)).all() if r[3] in owner_ids}
    assert kept == wanted
    return kept


async def test_the_materialised_access_follows_every_change(
    stack: Stack, http: httpx.AsyncClient, db: Database, new_admin: AppUser
) -> None:
    owner, reader, member = [await sh.person(stack, http) for _ in range(3)]
    gid = await sh.group(http, new_admin, member)
    mine = {uuid.UUID(owner.id)}
    headers = await owner.headers()
    bills = (await http.post("/categories", headers=headers, json={"name": "Bills"})).json()
    work = (await http.post("/categories", headers=headers, json={"name": "Work"})).json()
    one = (await h.create(stack, owner.user, "one.pdf")).document.id
    two = (await h.create(stack, owner.user, "two.pdf")).document.id

    async def file(action: str, ids: list[uuid.UUID], category: dict[str, str]) -> None:
        r = await http.post(
            "/documents/bulk",
            headers=await owner.headers(),
            json={"action": action, "ids": [str(i) for i in ids], "category_id": category["id"]},
        )
        assert r.json()["succeeded"] == len(ids), r.text

    await file("assign_category", [one], bills)
    direct = await sh.share(http, owner, f"documents/{two}", "viewer", email=reader.email)
    await sh.share(http, owner, f"categories/{bills['id']}", "editor", group_id=gid)
    rows = await in_step(db, mine)
    assert {(r[1], r[2], r[4]) for r in rows} == {
        (two, uuid.UUID(reader.id), "viewer"),
        (one, uuid.UUID(gid), "editor"),
    }

    await file("assign_category", [two], bills)  # filed later: reached at once
    await sh.share(http, owner, f"documents/{two}", "editor", email=reader.email)  # a role change
    rows = await in_step(db, mine)
    assert (two, uuid.UUID(reader.id), "editor") in {(r[1], r[2], r[4]) for r in rows}
    assert (two, uuid.UUID(gid), "editor") in {(r[1], r[2], r[4]) for r in rows}

    await file("remove_category", [one], bills)  # unfiled: no longer reached
    rows = await in_step(db, mine)
    assert one not in {r[1] for r in rows}

    # An administrator's share of someone's category reaches the owner's filings, which the administrator
    # cannot read themselves.
    await file("assign_category", [one], work)
    async with as_admin(db, caller(new_admin, role="admin")) as s:
        await s.execute(
            insert(tables.shares).values(
                id=uuid.uuid4(),
                owner_id=uuid.UUID(owner.id),
                category_id=uuid.UUID(work["id"]),
                grantee_type="user",
                grantee_id=uuid.UUID(reader.id),
                role="viewer",
                created_by=uuid.UUID(new_admin.id),
            )
        )
    rows = await in_step(db, mine)
    assert (one, uuid.UUID(reader.id), "viewer") in {(r[1], r[2], r[4]) for r in rows}

    r = await http.delete(f"/shares/{direct['id']}", headers=await owner.headers())  # revoked
    assert r.status_code in (200, 204), r.text
    r = await http.delete(f"/categories/{work['id']}", headers=await owner.headers())  # its share goes
    assert r.status_code in (200, 204), r.text
    rows = await in_step(db, mine)
    assert {(r[1], r[2]) for r in rows} == {(two, uuid.UUID(gid))}
    r = await http.delete(f"/documents/{two}", headers=await owner.headers())
    assert r.status_code in (200, 204), r.text
    assert await in_step(db, mine) == set()


async def test_the_copied_sort_keys_follow_every_write_of_the_document(
    stack: Stack, http: httpx.AsyncClient, db: Database, new_admin: AppUser
) -> None:
    """A document's sort columns written by its owner, by an editor it is shared with, by the pipeline (its
    status steps, the AI's title and document date) or cleared: its access rows carry the new values in
    the same transaction, whichever share reaches it (a document share and a category share here)."""
    owner, editor, member = [await sh.person(stack, http) for _ in range(3)]
    gid = await sh.group(http, new_admin, member)
    mine = {uuid.UUID(owner.id)}
    bills = (await http.post("/categories", headers=await owner.headers(), json={"name": "Bills"})).json()
    created = (await h.create(stack, owner.user, "Scan-0042.PDF")).document
    doc = created.id
    await sh.share(http, owner, f"documents/{doc}", "editor", email=editor.email)
    await sh.share(http, owner, f"categories/{bills['id']}", "viewer", group_id=gid)
    r = await http.post(
        "/documents/bulk",
        headers=await owner.headers(),
        json={"action": "assign_category", "ids": [str(doc)], "category_id": bills["id"]},
    )
    assert r.json()["succeeded"] == 1, r.text
    a = tables.document_access.c

    async def keys() -> set[tuple[object, ...]]:
        rows = await in_step(db, mine)  # every copy equals the document's values
        assert len(rows) == 2
        return {r[5:] for r in rows}

    before = await keys()
    assert len(before) == 1  # both shares' rows carry the same values

    # The pipeline (as the system): extracted, then the AI's title and document date.
    owner_id = uuid.UUID(owner.id)
    await h.extracted(stack, doc, owner_id, created.run_id, ["Electricity bill"])
    await h.analyzed(stack, doc, owner_id, created.run_id, title="Power Bill", document_date=date(2024, 3, 1))
    (after_ai,) = await keys()
    assert after_ai[1:3] == (date(2024, 3, 1), "power bill") and after_ai[5] == "ready", after_ai

    # The editor it is shared with renames it (they may not write document_access themselves).
    r = await http.patch(f"/documents/{doc}", headers=await editor.headers(), json={"title": "Água Invoice"})
    assert r.status_code == 200, r.text
    (renamed,) = await keys()
    assert renamed[2] == "água invoice", renamed

    # The owner changes the date, then clears title and date: the keys fall back as the list's do.
    r = await http.patch(
        f"/documents/{doc}", headers=await owner.headers(), json={"fields": {"document_date": "2020-02-29"}}
    )
    assert r.status_code == 200, r.text
    assert (await keys()).pop()[1] == date(2020, 2, 29)
    r = await http.patch(
        f"/documents/{doc}", headers=await owner.headers(), json={"clear": ["title", "document_date"]}
    )
    assert r.status_code == 200, r.text
    (cleared,) = await keys()
    assert cleared[1:4] == (date(1, 1, 1), "scan-0042.pdf", "scan-0042.pdf"), cleared

    # A new share (and a new filing) copies the current values too.
    await sh.share(http, owner, f"documents/{doc}", "viewer", group_id=gid)
    rows = await in_step(db, mine)
    assert len(rows) == 3 and {r[5:] for r in rows} == {cleared}
    async with as_system(db, "directory", write=False) as s:
        assert (await s.execute(select(a.title_key).where(a.document_id == doc))).scalars().all() == [
            "scan-0042.pdf"
        ] * 3


async def test_nobody_but_the_triggers_writes_the_materialised_access(
    stack: Stack, http: httpx.AsyncClient, db: Database
) -> None:
    owner, reader = await sh.person(stack, http), await sh.person(stack, http)
    doc = await h.ready_document(stack, owner.user, "mine.pdf", "mine")
    share = await sh.share(http, owner, f"documents/{doc}", "viewer", email=reader.email)
    a = tables.document_access.c
    for who in (caller(owner.user), caller(reader.user)):
        with pytest.raises(DBAPIError, match="row-level security"):
            async with acting(db, who, write=True) as s:
                await s.execute(
                    insert(tables.document_access).values(
                        share_id=uuid.UUID(share["id"]),
                        document_id=doc,
                        grantee_id=uuid.UUID(reader.id),
                        owner_id=uuid.UUID(owner.id),
                        role="editor",
                    )
                )
        async with acting(db, who, write=True) as s:
            assert (await s.execute(update(tables.document_access).values(role="editor"))).rowcount == 0
            assert (await s.execute(delete(tables.document_access))).rowcount == 0
            # The grantee reads the rows that reach them (and the owner those of their shares).
            seen = (await s.execute(select(a.document_id).where(a.share_id == uuid.UUID(share["id"])))).all()
            assert [r.document_id for r in seen] == [doc]
