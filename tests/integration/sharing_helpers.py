"""Helpers for the sharing tests: people who know each other (the documents service's directory has them),
groups made by an administrator, shares made over HTTP like the web app makes them."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from services.docs.access import as_system
from services.docs.tables import directory
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login
from tests.integration import docs_helpers as h

TOKEN_REFRESH_S = 600  # access tokens live 15 minutes; a long module signs in again before that


@dataclass
class Person:
    """A signed-in user whose token is renewed when it gets old (a module of tests may run long)."""

    user: AppUser
    http: httpx.AsyncClient
    signed_in: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email

    async def fresh(self) -> AppUser:
        if time.monotonic() - self.signed_in > TOKEN_REFRESH_S:
            r = await self.http.post("/auth/login", json={"email": self.user.email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            body = r.json()
            self.user = AppUser(
                self.user.id, self.user.email, PASSWORD, body["access_token"], body["refresh_token"]
            )
            self.signed_in = time.monotonic()
        return self.user

    async def headers(self) -> dict[str, str]:
        return (await self.fresh()).headers

    async def token(self) -> str:
        return (await self.fresh()).access_token


async def known(stack: Stack, *users: AppUser | Person) -> None:
    """Wait until the documents service's directory (projected from auth's events) has these accounts."""
    ids = {uuid.UUID(u.id) for u in users}
    db = h.deps(stack).db
    for _ in range(200):
        async with as_system(db, "directory", write=False) as s:
            found = set(
                (await s.execute(select(directory.c.user_id).where(directory.c.user_id.in_(ids)))).scalars()
            )
        if found == ids:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the documents service never learned of {ids - found}")


async def person(stack: Stack, http: httpx.AsyncClient) -> Person:
    p = Person(await register_and_login(http), http)
    await known(stack, p)
    return p


async def group(http: httpx.AsyncClient, admin: AppUser, *members: AppUser | Person) -> str:
    r = await http.post("/admin/groups", headers=admin.headers, json={"name": f"g-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 201, r.text
    gid: str = r.json()["id"]
    for m in members:
        r = await http.put(f"/admin/groups/{gid}/members/{m.id}", headers=admin.headers)
        assert r.status_code == 200, r.text
    return gid


async def share(
    http: httpx.AsyncClient, owner: AppUser | Person, target: str, role: str = "viewer", **grantee: Any
) -> dict[str, Any]:
    """Share `target` ("documents/<id>" or "categories/<id>") with `grantee` (email=, user_id=, group_id=)."""
    headers = owner.headers if isinstance(owner, AppUser) else await owner.headers()
    r = await http.post(f"/{target}/shares", headers=headers, json={**grantee, "role": role})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def listed(http: httpx.AsyncClient, who: AppUser | Person, **query: Any) -> list[dict[str, Any]]:
    headers = who.headers if isinstance(who, AppUser) else await who.headers()
    r = await http.get("/documents", headers=headers, params={"limit": 200, **query})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
