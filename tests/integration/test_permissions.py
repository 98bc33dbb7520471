"""Permissions over real NATS, Postgres and HTTP: the app registry, default grants applied exactly
once, grants and group grants, and the access guard whose cache a change invalidates at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest

from contracts import REGISTRY, AtriumError, Forbidden, Header
from contracts.auth import USER_REGISTERED, UserRegistered
from contracts.permissions import APP_ANNOUNCED, AppManifest
from services.kit.apps import AppAccessGuard
from services.kit.bus import Service
from services.kit.db import Database
from services.kit.security import Actor
from tests.conftest import AppUser, Stack, register_and_login

DEADLINE_S = 20.0


async def wait_consumed(stack: Stack, stream: str, durable: str, seq: int) -> None:
    """Until the durable consumer has acknowledged stream sequence `seq` (the event was handled)."""
    js = stack.nc.jetstream()
    end = time.monotonic() + DEADLINE_S
    while True:
        info = await js.consumer_info(stream, durable)
        if info.ack_floor.stream_seq >= seq:
            return
        assert time.monotonic() < end, f"{durable} did not handle seq {seq}: {info}"
        await asyncio.sleep(0.05)


async def announce(stack: Stack, *, default_grant: bool = False) -> str:
    """Announce a throwaway app, as `announce_app` would, and wait until the registry has it."""
    key = f"t-{uuid.uuid4().hex[:10]}"
    manifest = AppManifest(
        key=key,
        name=f"Test {key}",
        route=f"/{key}",
        default_grant=default_grant,
        version="1",
        announced_at=datetime.now(UTC),
    )
    ack = await stack.nc.jetstream().publish(APP_ANNOUNCED.subject, manifest.model_dump_json().encode())
    await wait_consumed(stack, APP_ANNOUNCED.stream, "permissions_app_announced", ack.seq)
    return key


async def grants_of(http: httpx.AsyncClient, admin: AppUser, user_id: str) -> dict:
    r = await http.get(f"/admin/users/{user_id}/grants", headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def my_app_keys(http: httpx.AsyncClient, user: AppUser) -> set[str]:
    r = await http.get("/apps", headers=user.headers)
    assert r.status_code == 200, r.text
    return {a["key"] for a in r.json()["apps"]}


@pytest.fixture
async def guard_service(stack: Stack):
    """A bare service of our own running the guard, as the documents service does."""
    svc = Service(stack.settings("guardtest"))
    yield svc
    await svc.stop()
    # Its `guardtest.health` Rpc is not part of the platform: keep the contract registry as it was.
    REGISTRY.rpcs.pop(f"{svc.name}.health", None)


async def start_guard(svc: Service, app_key: str) -> AppAccessGuard:
    guard = AppAccessGuard(svc, app_key, app_name="Test")
    await svc.start()
    return guard


async def actor_of(svc: Service, user: AppUser) -> Actor:
    assert svc.verifier is not None
    return await svc.verifier.verify(f"Bearer {user.access_token}")


async def settled(svc: Service) -> None:
    """Everything the server sent this connection so far has been handled. In a real app the next
    request arrives on the same connection after the change event, so this order is given."""
    await svc.nc.flush()
    await asyncio.sleep(0)


async def test_default_grants_and_profile_exactly_once(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    key = await announce(stack, default_grant=True)
    user = await register_and_login(http)
    end = time.monotonic() + DEADLINE_S
    while key not in [g["app_key"] for g in (await grants_of(http, new_admin, user.id))["direct"]]:
        assert time.monotonic() < end, "the default grant was never applied"
        await asyncio.sleep(0.05)
    # Stop giving this throwaway app to the users other tests register.
    r = await http.patch(f"/admin/apps/{key}", json={"default_grant": False}, headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["default_grant"] is False
    grant = next(g for g in (await grants_of(http, new_admin, user.id))["direct"] if g["app_key"] == key)
    assert grant["granted_by"] is None
    assert key in await my_app_keys(http, user)

    # Changes after registration that a replayed registration must not undo.
    r = await http.patch("/profile", json={"display_name": "Changed after signup"}, headers=user.headers)
    assert r.status_code == 200, r.text
    r = await http.delete(f"/admin/users/{user.id}/grants/{key}", headers=new_admin.headers)
    assert r.status_code == 204, r.text

    again = UserRegistered(
        user_id=UUID(user.id), email=user.email, role="user", registered_at=datetime.now(UTC)
    )
    ack = await stack.nc.jetstream().publish(
        USER_REGISTERED.subject,
        again.model_dump_json().encode(),
        headers={Header.MSG_ID: f"replay-{uuid.uuid4().hex}"},
    )
    assert not ack.duplicate
    await wait_consumed(stack, USER_REGISTERED.stream, "permissions_user_registered", ack.seq)
    await wait_consumed(stack, USER_REGISTERED.stream, "profile_user_registered", ack.seq)

    assert key not in [g["app_key"] for g in (await grants_of(http, new_admin, user.id))["direct"]]
    assert key not in await my_app_keys(http, user)
    r = await http.get("/profile", headers=user.headers)
    assert r.json()["display_name"] == "Changed after signup"

    applied = await query(
        stack,
        "permissions",
        "select count(*) as n from audit_log where target_id = :u and action = 'grant.defaults_applied'",
        u=user.id,
    )
    profiles = await query(
        stack, "profile", "select count(*) as n from profiles where user_id = :u", u=user.id
    )
    assert applied[0].n == 1 and profiles[0].n == 1


async def query(stack: Stack, schema: str, sql: str, **params: object) -> list:
    from sqlalchemy import text

    db = Database(stack.db_urls[schema], schema)
    try:
        async with db.session() as s:
            return list((await s.execute(text(sql), params)).all())
    finally:
        await db.dispose()


async def test_a_deleted_user_keeps_no_grants_or_memberships(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser
) -> None:
    # The consumer of USER_DELETED, driven directly with the live service's dependencies.
    from contracts.auth import UserDeleted
    from contracts.permissions import PERMISSIONS_CHANGED
    from services.kit.bus import Ctx
    from services.permissions.handlers import grants
    from services.permissions.handlers.common import PermDeps

    key = await announce(stack)
    h = new_admin.headers
    assert (await http.put(f"/admin/users/{new_user.id}/grants/{key}", headers=h)).status_code == 200
    group = (await http.post("/admin/groups", json={"name": f"G {uuid.uuid4().hex[:6]}"}, headers=h)).json()
    assert (
        await http.put(f"/admin/groups/{group['id']}/members/{new_user.id}", headers=h)
    ).status_code == 200
    deps = stack.services["permissions"].deps_as(PermDeps)
    await grants.forget_user(
        UserDeleted(user_id=UUID(new_user.id), deleted_at=datetime.now(UTC)), Ctx(request_id="test"), deps
    )
    grants_left = await grants_of(http, new_admin, new_user.id)
    assert grants_left["direct"] == [] and grants_left["effective"] == []
    # Exactly one change announced, and acknowledged by the stream by the time the handler returned.
    announced = await query(
        stack,
        "permissions",
        "select sent_at from outbox where subject = :s and payload->>'change' = 'user_deleted'"
        " and payload->'user_ids' = jsonb_build_array(cast(:u as text))",
        s=PERMISSIONS_CHANGED.subject,
        u=new_user.id,
    )
    assert len(announced) == 1 and announced[0].sent_at is not None


async def test_old_announcements_are_pruned(stack: Stack) -> None:
    from services.permissions.app import prune_announcements_once

    js = stack.nc.jetstream()
    for _ in range(3):
        await announce(stack)
    await prune_announcements_once(js, keep=2)
    info = await js.stream_info(APP_ANNOUNCED.stream, subjects_filter=APP_ANNOUNCED.subject)
    assert info.state.subjects[APP_ANNOUNCED.subject] == 2


async def test_revoked_app_disappears_and_guard_refuses_on_next_request(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser, guard_service: Service
) -> None:
    key = await announce(stack)
    guard = await start_guard(guard_service, key)
    actor = await actor_of(guard_service, new_user)
    assert key not in await my_app_keys(http, new_user)
    with pytest.raises(Forbidden) as refused:
        await guard.check(actor)
    assert "ask an administrator" in refused.value.message

    r = await http.put(f"/admin/users/{new_user.id}/grants/{key}", headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["granted_by"] == new_admin.id, r.text
    await settled(guard_service)
    assert guard.cached(actor.user_id) is None  # the grant made the guard forget the refusal
    await guard.check(actor)
    assert guard.cached(actor.user_id) is True
    assert key in await my_app_keys(http, new_user)
    r = await http.put(f"/admin/users/{new_user.id}/grants/{key}", headers=new_admin.headers)
    assert r.status_code == 200  # granting twice is fine

    r = await http.delete(f"/admin/users/{new_user.id}/grants/{key}", headers=new_admin.headers)
    assert r.status_code == 204
    assert key not in await my_app_keys(http, new_user)
    await settled(guard_service)
    with pytest.raises(Forbidden):
        await guard.check(actor)

    # An admin is always let in, with or without grants.
    await guard.check(await actor_of(guard_service, new_admin))


async def test_group_grant_gives_access_and_membership_removal_takes_it(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser, guard_service: Service
) -> None:
    key = await announce(stack)
    guard = await start_guard(guard_service, key)
    actor = await actor_of(guard_service, new_user)
    h = new_admin.headers
    r = await http.post("/admin/groups", json={"name": f"Team {uuid.uuid4().hex[:6]}"}, headers=h)
    assert r.status_code == 201, r.text
    group = r.json()
    r = await http.post("/admin/groups", json={"name": group["name"]}, headers=h)
    assert r.status_code == 409
    r = await http.put(f"/admin/groups/{group['id']}/grants/{key}", headers=h)
    assert r.status_code == 200 and r.json()["app_keys"] == [key]
    with pytest.raises(Forbidden):
        await guard.check(actor)

    r = await http.put(f"/admin/groups/{group['id']}/members/{new_user.id}", headers=h)
    assert r.status_code == 200 and r.json()["member_ids"] == [new_user.id], r.text
    await settled(guard_service)
    await guard.check(actor)
    assert key in await my_app_keys(http, new_user)
    grants = await grants_of(http, new_admin, new_user.id)
    assert key not in [g["app_key"] for g in grants["direct"]] and key in grants["effective"]
    assert grants["via_groups"][0]["group_id"] == group["id"]

    r = await http.delete(f"/admin/groups/{group['id']}/members/{new_user.id}", headers=h)
    assert r.status_code == 200 and r.json()["member_ids"] == []
    await settled(guard_service)
    with pytest.raises(Forbidden):
        await guard.check(actor)
    assert key not in await my_app_keys(http, new_user)

    r = await http.patch(f"/admin/groups/{group['id']}", json={"description": "renamed"}, headers=h)
    assert r.status_code == 200 and r.json()["description"] == "renamed"
    r = await http.delete(f"/admin/groups/{group['id']}", headers=h)
    assert r.status_code == 204
    r = await http.delete(f"/admin/groups/{group['id']}", headers=h)
    assert r.status_code == 404

    # Every change is an audit entry, with who did it.
    rows = await query(
        stack,
        "permissions",
        "select action, actor_id from audit_log where target_id = :g order by at",
        g=group["id"],
    )
    assert [r.action for r in rows] == [
        "group.created",
        "group.granted",
        "group.member_added",
        "group.member_removed",
        "group.updated",
        "group.deleted",
    ]
    assert {str(r.actor_id) for r in rows} == {new_admin.id}


async def test_admin_app_registry_and_unknown_app(
    http: httpx.AsyncClient, stack: Stack, new_admin: AppUser, new_user: AppUser
) -> None:
    key = await announce(stack)
    r = await http.get("/admin/apps", headers=new_admin.headers)
    app = next(a for a in r.json()["apps"] if a["key"] == key)
    assert app["available"] is True and app["default_grant"] is False
    r = await http.patch(f"/admin/apps/{key}", json={"default_grant": True}, headers=new_admin.headers)
    assert (
        r.status_code == 200
        and r.json()["default_grant"] is True
        and r.json()["manifest_default_grant"] is False
    )
    r = await http.patch(f"/admin/apps/{key}", json={"default_grant": None}, headers=new_admin.headers)
    assert r.status_code == 200 and r.json()["default_grant"] is False
    r = await http.put(f"/admin/users/{new_user.id}/grants/nosuchapp", headers=new_admin.headers)
    assert r.status_code == 404 and "nosuchapp" in r.json()["error"]["message"]
    r = await http.put(f"/admin/users/{new_user.id}/grants/Bad.Key", headers=new_admin.headers)
    assert r.status_code == 422
    # An admin's own app list holds every available app.
    assert key in await my_app_keys(http, new_admin)


async def test_an_app_that_stops_announcing_is_unavailable_not_deleted(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser
) -> None:
    key = f"t-{uuid.uuid4().hex[:10]}"
    old = AppManifest(key=key, name="Gone", route=f"/{key}", announced_at=datetime(2020, 1, 1, tzinfo=UTC))
    ack = await stack.nc.jetstream().publish(APP_ANNOUNCED.subject, old.model_dump_json().encode())
    await wait_consumed(stack, APP_ANNOUNCED.stream, "permissions_app_announced", ack.seq)
    r = await http.put(f"/admin/users/{new_user.id}/grants/{key}", headers=new_admin.headers)
    assert r.status_code == 200
    r = await http.get("/admin/apps", headers=new_admin.headers)
    assert next(a for a in r.json()["apps"] if a["key"] == key)["available"] is False
    assert key not in await my_app_keys(http, new_user)


async def test_access_check_only_about_yourself(
    stack: Stack, new_user: AppUser, http: httpx.AsyncClient
) -> None:
    from contracts.permissions import ACCESS_CHECK
    from services.kit.client import call

    other = await register_and_login(http)
    d = await call(
        stack.nc, ACCESS_CHECK, {"user_id": new_user.id, "app_key": "documents"}, token=new_user.access_token
    )
    assert d.allowed in (True, False)
    with pytest.raises(AtriumError) as err:
        await call(
            stack.nc, ACCESS_CHECK, {"user_id": other.id, "app_key": "documents"}, token=new_user.access_token
        )
    assert err.value.code == "forbidden"
