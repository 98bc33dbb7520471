"""Deleting a user (admin) removes their profile, avatar, grants and memberships, through
`events.auth.user_deleted` and nothing else."""

from __future__ import annotations

import io
import uuid

import httpx
from nats.js.errors import ObjectNotFoundError
from PIL import Image
from sqlalchemy import text

from contracts.auth import USER_DELETED
from contracts.profile import AVATAR_BUCKET
from services.kit.bus import ensure_object_store
from services.kit.db import Database
from tests.conftest import AppUser, Stack
from tests.integration.test_permissions import announce, grants_of, wait_consumed


async def avatar_object(stack: Stack, user_id: str) -> str | None:
    db = Database(stack.db_urls["profile"], "profile")
    try:
        async with db.session() as s:
            row = (
                await s.execute(text("select avatar_object from profiles where user_id = :u"), {"u": user_id})
            ).first()
    finally:
        await db.dispose()
    return None if row is None else (row[0] or "")


async def test_deleting_a_user_forgets_profile_avatar_and_grants(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buf, "PNG")
    assert (
        await http.put("/profile/avatar", content=buf.getvalue(), headers=new_user.headers)
    ).status_code == 200
    key = await announce(stack)
    h = new_admin.headers
    assert (await http.put(f"/admin/users/{new_user.id}/grants/{key}", headers=h)).status_code == 200
    group = (await http.post("/admin/groups", json={"name": f"Del {uuid.uuid4().hex[:6]}"}, headers=h)).json()
    assert (
        await http.put(f"/admin/groups/{group['id']}/members/{new_user.id}", headers=h)
    ).status_code == 200
    name = await avatar_object(stack, new_user.id)
    assert name
    store = await ensure_object_store(stack.nc.jetstream(), AVATAR_BUCKET)
    assert (await store.get(name)).data

    r = await http.delete(f"/admin/users/{new_user.id}", headers=h)
    assert r.status_code == 200, r.text
    js = stack.nc.jetstream()
    last = await js.get_last_msg(USER_DELETED.stream, USER_DELETED.subject)
    assert new_user.id in last.data.decode()
    for durable in ("profile_user_deleted", "permissions_user_deleted"):
        await wait_consumed(stack, USER_DELETED.stream, durable, last.seq)

    assert await avatar_object(stack, new_user.id) is None  # no profile row at all
    try:
        await store.get(name)
        raise AssertionError("the avatar outlived its user")
    except ObjectNotFoundError:
        pass
    grants = await grants_of(http, new_admin, new_user.id)
    assert grants["direct"] == [] and grants["via_groups"] == []
    r = await http.get("/admin/groups", headers=h)
    assert next(g for g in r.json()["groups"] if g["id"] == group["id"])["member_ids"] == []
