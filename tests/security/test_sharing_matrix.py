"""Every documents endpoint × every kind of person, over HTTP and on the bus, from one table.

The people: the document's owner; an editor and a viewer it is shared with directly; a member of a group the
owner's category (which the document is filed under) is shared with as viewer; a removed member (was in
that group); a stranger; an administrator (who reads nothing of others', but may delete and manage access).
Each row names what each of them gets: an HTTP status (the bus answers the same as `ok` or the error code
the status stands for), whether a list shows the document, or how a bulk action's item ends.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contracts import HTTP_STATUS, AtriumError, sharing
from contracts import docs_api as api
from contracts.base import Rpc
from contracts.documents import DocumentFailed
from services.docs.handlers import pipeline
from services.docs.handlers.common import progress
from services.kit.client import call
from tests.conftest import PASSWORD, AppUser, Stack, create_admin, register_and_login
from tests.integration import docs_helpers as h
from tests.integration import sharing_helpers as sh

PEOPLE = ("owner", "editor", "viewer", "member", "removed", "stranger", "admin")
WORD = "quokkaledger"  # only in the matrix's readable document

# Each row: (name, what each of PEOPLE gets). Statuses are HTTP's; "seen"/"hidden" say whether a list or
# a live stream shows the document; "ok"/"forbidden"/"not_found" how a bulk item or a check ends.
MATRIX: dict[str, tuple[Any, ...]] = {
    "list": ("seen", "seen", "seen", "seen", "hidden", "hidden", "hidden"),
    "search": ("seen", "seen", "seen", "seen", "hidden", "hidden", "hidden"),
    "shared with me": ("hidden", "seen", "seen", "seen", "hidden", "hidden", "hidden"),
    "counts": ("seen", "seen", "seen", "seen", "hidden", "hidden", "hidden"),
    "detail": (200, 200, 200, 200, 404, 404, 404),
    "download": (200, 200, 200, 200, 404, 404, 404),
    "preview": (200, 200, 200, 200, 404, 404, 404),
    "who has access": (200, 200, 200, 200, 404, 404, 200),
    "edit": (200, 200, 403, 403, 404, 404, 404),
    "reprocess": (200, 200, 403, 403, 404, 404, 404),
    "delete": (204, 403, 403, 403, 404, 404, 204),
    "share": (201, 403, 403, 403, 404, 404, 201),
    "links": (200, 403, 403, 403, 404, 404, 200),
    "make a link": (201, 403, 403, 403, 404, 404, 201),
    "bulk reprocess by id": ("ok", "ok", "forbidden", "forbidden", "not_found", "not_found", "not_found"),
    "bulk delete by id": ("ok", "forbidden", "forbidden", "forbidden", "not_found", "not_found", "ok"),
    "bulk file under own category by id": ("ok", "ok", "ok", "ok", "not_found", "not_found", "not_found"),
    "bulk reprocess by filter": ("seen", "seen", "hidden", "hidden", "hidden", "hidden", "hidden"),
    "bulk delete by filter": ("seen", "hidden", "hidden", "hidden", "hidden", "hidden", "hidden"),
    "retry a failed task": (200, 200, 403, 403, 404, 404, 404),
    "tasks list": ("seen", "hidden", "hidden", "hidden", "hidden", "hidden", "hidden"),
    # HTTP: the JSON export of every page; the bus: the pages it is made of (`docs.task.list`).
    "tasks export": ("seen", "hidden", "hidden", "hidden", "hidden", "hidden", "hidden"),
    # HTTP: the server-sent events stream; the bus: the check the stream asks per batch (`docs.events.check`).
    "live events": ("seen", "seen", "seen", "seen", "hidden", "hidden", "hidden"),
}
CODE = {status: code.value for code, status in HTTP_STATUS.items()}


def bus_outcome(expected: Any) -> Any:
    """What the bus answers where HTTP answers `expected`."""
    if isinstance(expected, int):
        return "ok" if expected < 300 else CODE[expected]
    return expected


@dataclass
class World:
    http: httpx.AsyncClient
    stack: Stack
    people: dict[str, sh.Person]
    group_id: str
    other_group_id: str
    category_id: str  # the owner's, shared with the group
    own_categories: dict[str, str]  # each person's own category
    readable: uuid.UUID  # ready, with WORD in its text
    rendered: uuid.UUID  # a real PDF, processed, with a preview
    sentinels: dict[str, uuid.UUID] = field(default_factory=dict)  # each person's own document

    async def fresh(self) -> uuid.UUID:
        """A new document of the owner's, shared as every row expects."""
        owner = self.people["owner"]
        doc = (await h.create(self.stack, await owner.fresh(), f"m-{uuid.uuid4().hex[:6]}.pdf")).document.id
        await self.shared_as_expected(doc)
        return doc

    async def shared_as_expected(self, doc: uuid.UUID) -> None:
        owner = self.people["owner"]
        await sh.share(self.http, owner, f"documents/{doc}", "editor", email=self.people["editor"].email)
        await sh.share(self.http, owner, f"documents/{doc}", "viewer", email=self.people["viewer"].email)
        r = await self.http.post(
            "/documents/bulk",
            headers=await owner.headers(),
            json={"action": "assign_category", "ids": [str(doc)], "category_id": self.category_id},
        )
        assert r.json()["succeeded"] == 1, r.text


@pytest_asyncio.fixture(scope="module")
async def world(stack: Stack) -> Any:
    if not {"auth", "permissions", "docs", "extract"} <= set(stack.services):
        pytest.skip("needs the auth, permissions, docs and extract services")
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=60) as http:
        people = {name: await sh.person(stack, http) for name in PEOPLE if name != "admin"}
        email = await create_admin(stack)
        r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        body = r.json()
        admin = sh.Person(
            AppUser(body["user"]["id"], email, PASSWORD, body["access_token"], body["refresh_token"]),
            http,
        )
        people["admin"] = admin
        a = admin.user
        gid = await sh.group(http, a, people["member"], people["removed"])
        r = await http.delete(f"/admin/groups/{gid}/members/{people['removed'].id}", headers=a.headers)
        assert r.status_code == 200
        other_gid = await sh.group(http, a, await register_and_login(http))
        owner = people["owner"]
        cat = (await http.post("/categories", headers=await owner.headers(), json={"name": "Shared"})).json()
        await sh.share(http, owner, f"categories/{cat['id']}", "viewer", group_id=gid)
        own_categories = {}
        for name, p in people.items():
            r = await http.post("/categories", headers=await p.headers(), json={"name": f"Mine {name}"})
            own_categories[name] = r.json()["id"]
        readable = await h.ready_document(stack, await owner.fresh(), "readable.pdf", f"the {WORD} text")
        r = await h.upload(http, await owner.fresh(), h.INVOICE, "rendered.pdf")
        rendered = uuid.UUID(r.json()["documents"][0]["document"]["id"])
        w = World(http, stack, people, gid, other_gid, cat["id"], own_categories, readable, rendered)
        await w.shared_as_expected(readable)
        await w.shared_as_expected(rendered)
        for _ in range(900):
            body = (await http.get(f"/documents/{rendered}", headers=await owner.headers())).json()
            if body["preview_pages"] >= 1:
                break
            await asyncio.sleep(0.1)
        assert body["preview_pages"] >= 1, body
        for name, p in people.items():
            w.sentinels[name] = (await h.create(stack, await p.fresh(), f"sentinel-{name}.pdf")).document.id
        yield w


# ---- one function per row: (world, person, transport) -> outcome ----------------------------------------

Check = Callable[[World, sh.Person, str], Awaitable[Any]]


async def _ask(
    w: World,
    p: sh.Person,
    transport: str,
    rpc: Rpc[Any, Any],
    payload: dict[str, Any],
    method: str,
    path: str,
    **kw: Any,
) -> Any:
    """One request either way: the HTTP status, or `ok` / the error code on the bus (and the reply)."""
    if transport == "http":
        r = await w.http.request(method, path, headers=await p.headers(), **kw)
        return r.status_code, (
            r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        )
    try:
        reply = await call(w.stack.nc, rpc, payload, token=await p.token(), timeout=60)
        return "ok", reply.model_dump(mode="json")
    except AtriumError as err:
        return err.code.value, None


def _seen(found: bool) -> str:
    return "seen" if found else "hidden"


async def listed(w: World, p: sh.Person, t: str, **query: Any) -> str:
    out, body = await _ask(
        w,
        p,
        t,
        api.DOCUMENT_LIST,
        {"limit": 200, **query},
        "GET",
        "/documents",
        params={"limit": 200, **query},
    )
    assert out in (200, "ok"), out
    return _seen(str(w.readable) in {d["id"] for d in body["items"]})


async def counts(w: World, p: sh.Person, t: str) -> str:
    async def total() -> int:
        out, body = await _ask(w, p, t, api.DOCUMENT_COUNTS, {}, "GET", "/documents/counts")
        assert out in (200, "ok"), out
        return int(body["total"])

    before = await total()
    await w.fresh()
    return _seen(await total() == before + 1)


async def on_fresh(
    w: World,
    p: sh.Person,
    t: str,
    rpc: Rpc[Any, Any],
    method: str,
    path: str,
    payload: dict[str, Any] | None = None,
    **kw: Any,
) -> Any:
    doc = await w.fresh()
    out, _ = await _ask(w, p, t, rpc, {"id": str(doc), **(payload or {})}, method, path.format(doc=doc), **kw)
    return out


async def bulk_item(w: World, p: sh.Person, t: str, action: str, **extra: Any) -> str:
    doc = await w.fresh()
    body = {"action": action, "ids": [str(doc)], **extra}
    out, reply = await _ask(w, p, t, api.DOCUMENT_BULK, body, "POST", "/documents/bulk", json=body)
    assert out in (200, "ok"), out
    [item] = reply["results"]
    return "ok" if item["ok"] else item["code"]


async def bulk_filter(w: World, p: sh.Person, t: str, action: str) -> str:
    doc = await w.fresh()
    at = (await h.get(w.stack, await w.people["owner"].fresh(), doc)).uploaded_at.isoformat()
    body = {"action": action, "filter": {"uploaded_from": at, "uploaded_to": at}}
    out, reply = await _ask(w, p, t, api.DOCUMENT_BULK, body, "POST", "/documents/bulk", json=body)
    assert out in (200, "ok"), out
    return _seen(str(doc) in {r["id"] for r in reply["results"]})


async def failed_task(w: World) -> uuid.UUID:
    """A fresh document whose extraction failed for good: its task may be retried."""
    doc = await w.fresh()
    owner = await w.people["owner"].fresh()
    d = await h.get(w.stack, owner, doc)
    ev = DocumentFailed(
        document_id=doc,
        owner_id=uuid.UUID(owner.id),
        run_id=d.run_id,
        stage="extract",
        reason="unreadable",
        message="not a PDF",
        attempt=1,
        final=True,
        finished_at=datetime.now(UTC),
    )
    await pipeline.on_failed(ev, h.ctx(), h.deps(w.stack))
    return next(t.id for t in (await h.get(w.stack, owner, doc)).tasks if t.status == "failed")


async def retry(w: World, p: sh.Person, t: str) -> Any:
    task = await failed_task(w)
    out, _ = await _ask(w, p, t, api.TASK_RETRY, {"id": str(task)}, "POST", f"/tasks/{task}/retry")
    return out


async def tasks_list(w: World, p: sh.Person, t: str) -> str:
    doc = await w.fresh()
    out, body = await _ask(w, p, t, api.TASK_LIST, {"limit": 500}, "GET", "/tasks", params={"limit": 500})
    assert out in (200, "ok"), out
    return _seen(str(doc) in {x["document_id"] for x in body["items"]})


async def tasks_export(w: World, p: sh.Person, t: str) -> str:
    doc = await w.fresh()
    out, body = await _ask(
        w, p, t, api.TASK_LIST, {"limit": 500}, "GET", "/tasks/export", params={"format": "json"}
    )
    assert out in (200, "ok"), out
    items = body if t == "http" else body["items"]
    return _seen(str(doc) in {x["document_id"] for x in items})


async def live(w: World, p: sh.Person, t: str) -> str:
    """HTTP: the stream shows the shared document's progress or not, told apart by the person's own
    document's progress published right after it. Bus: the check the stream asks for each batch."""
    doc = w.readable
    if t == "bus":
        out, body = await _ask(w, p, t, api.EVENTS_CHECK, {"document_ids": [str(doc)]}, "", "")
        assert out == "ok", out
        return _seen(str(doc) in body["document_ids"])
    deps = h.deps(w.stack)
    marker = uuid.uuid4().hex
    async with w.http.stream("GET", "/events", headers=await p.headers(), timeout=60) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()
        assert (await anext(lines)).startswith("retry:")
        await progress(deps, uuid.UUID(w.people["owner"].id), doc, uuid.uuid4(), "queued", f"shared {marker}")
        await progress(
            deps, uuid.UUID(p.id), w.sentinels[_name(w, p)], uuid.uuid4(), "queued", f"sentinel {marker}"
        )
        seen: list[str] = []

        async def until_sentinel() -> None:
            async for line in lines:
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:])["message"])
                    if seen[-1] == f"sentinel {marker}":
                        return

        await asyncio.wait_for(until_sentinel(), 60)
    return _seen(f"shared {marker}" in seen)


async def share_row(w: World, p: sh.Person, t: str) -> Any:
    doc = await w.fresh()
    body = {"group_id": w.other_group_id, "role": "viewer"}
    out, _ = await _ask(
        w,
        p,
        t,
        sharing.SHARE_GRANT,
        {**body, "document_id": str(doc)},
        "POST",
        f"/documents/{doc}/shares",
        json=body,
    )
    return out


async def link_row(w: World, p: sh.Person, t: str) -> Any:
    doc = await w.fresh()
    out, _ = await _ask(
        w, p, t, sharing.LINK_CREATE, {"document_id": str(doc)}, "POST", f"/documents/{doc}/links", json={}
    )
    return out


ROWS: dict[str, Check] = {
    "list": lambda w, p, t: listed(w, p, t),
    "search": lambda w, p, t: listed(w, p, t, q=WORD),
    "shared with me": lambda w, p, t: listed(w, p, t, scope="shared"),
    "counts": counts,
    "detail": lambda w, p, t: _first(
        _ask(w, p, t, api.DOCUMENT_GET, {"id": str(w.readable)}, "GET", f"/documents/{w.readable}")
    ),
    "download": lambda w, p, t: _first(
        _ask(w, p, t, api.DOCUMENT_DOWNLOAD, {"id": str(w.readable)}, "GET", f"/documents/{w.readable}/file")
    ),
    "preview": lambda w, p, t: _first(
        _ask(
            w,
            p,
            t,
            api.DOCUMENT_PREVIEW,
            {"document_id": str(w.rendered), "page": 1},
            "GET",
            f"/documents/{w.rendered}/pages/1/preview",
        )
    ),
    "who has access": lambda w, p, t: _first(
        _ask(
            w,
            p,
            t,
            sharing.SHARE_LIST,
            {"document_id": str(w.readable)},
            "GET",
            f"/documents/{w.readable}/shares",
        )
    ),
    "edit": lambda w, p, t: on_fresh(
        w,
        p,
        t,
        api.DOCUMENT_UPDATE,
        "PATCH",
        "/documents/{doc}",
        {"title": "changed"},
        json={"title": "changed"},
    ),
    "reprocess": lambda w, p, t: on_fresh(
        w, p, t, api.DOCUMENT_REPROCESS, "POST", "/documents/{doc}/reprocess"
    ),
    "delete": lambda w, p, t: on_fresh(w, p, t, api.DOCUMENT_DELETE, "DELETE", "/documents/{doc}"),
    "share": share_row,
    "links": lambda w, p, t: _first(
        _ask(w, p, t, sharing.LINK_LIST, {"id": str(w.readable)}, "GET", f"/documents/{w.readable}/links")
    ),
    "make a link": link_row,
    "bulk reprocess by id": lambda w, p, t: bulk_item(w, p, t, "reprocess"),
    "bulk delete by id": lambda w, p, t: bulk_item(w, p, t, "delete"),
    "bulk file under own category by id": lambda w, p, t: bulk_item(
        w, p, t, "assign_category", category_id=w.own_categories[_name(w, p)]
    ),
    "bulk reprocess by filter": lambda w, p, t: bulk_filter(w, p, t, "reprocess"),
    "bulk delete by filter": lambda w, p, t: bulk_filter(w, p, t, "delete"),
    "retry a failed task": retry,
    "tasks list": tasks_list,
    "tasks export": tasks_export,
    "live events": live,
}


async def _first(asked: Awaitable[tuple[Any, Any]]) -> Any:
    return (await asked)[0]


def _name(w: World, p: sh.Person) -> str:
    return next(n for n, q in w.people.items() if q is p)


def cases() -> list[Any]:
    out = []
    for row, expected in MATRIX.items():
        for transport in ("http", "bus"):
            for person, want in zip(PEOPLE, expected, strict=True):
                want = bus_outcome(want) if transport == "bus" else want
                out.append(pytest.param(row, person, transport, want, id=f"{row}-{person}-{transport}"))
    return out


def test_every_row_has_a_check_and_every_person_an_outcome() -> None:
    assert set(ROWS) == set(MATRIX)
    assert all(len(v) == len(PEOPLE) for v in MATRIX.values())


@pytest.mark.parametrize(("row", "person", "transport", "expected"), cases())
async def test_matrix(world: World, row: str, person: str, transport: str, expected: Any) -> None:
    assert await ROWS[row](world, world.people[person], transport) == expected
