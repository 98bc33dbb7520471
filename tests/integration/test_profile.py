"""The profile over real NATS, Postgres and HTTP: created lazily, edited with validation that names
the field, only ever the caller's own, and an avatar stored in the Object Store and served resized."""

from __future__ import annotations

import io
import json
from uuid import UUID

import httpx
import pytest
from PIL import Image

from contracts import AtriumError, Empty, Header
from contracts.profile import PROFILE_GET, PROFILE_UPDATE
from services.kit.client import call, parse_reply
from tests.conftest import AppUser, Stack, register_and_login


def png(size: tuple[int, int] = (600, 400), **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, "PNG", **save)
    return buf.getvalue()


async def test_profile_exists_on_first_read_with_defaults(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await http.get("/profile", headers=new_user.headers)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["user_id"] == new_user.id
    assert (p["locale"], p["time_zone"], p["theme"], p["has_avatar"]) == ("en", "UTC", "system", False)


async def test_patch_changes_only_the_fields_sent(http: httpx.AsyncClient, new_user: AppUser) -> None:
    h = new_user.headers
    r = await http.patch(
        "/profile",
        json={
            "display_name": "  Ada  ",
            "phone": "+44 20 7946 0958",
            "job_title": "Engineer",
            "locale": "ru",
            "time_zone": "Europe/Berlin",
            "theme": "dark",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["display_name"], p["phone"], p["locale"], p["time_zone"], p["theme"]) == (
        "Ada",
        "+442079460958",
        "ru",
        "Europe/Berlin",
        "dark",
    )
    r = await http.patch("/profile", json={"full_name": "Ada Lovelace", "phone": ""}, headers=h)
    p = r.json()
    assert p["full_name"] == "Ada Lovelace" and p["phone"] is None and p["display_name"] == "Ada"
    assert p["job_title"] == "Engineer" and p["theme"] == "dark"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 555 000"}, "phone"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"locale": "fr"}, "locale"),
        ({"theme": "neon"}, "theme"),
        ({"display_name": "x" * 81}, "display_name"),
    ],
)
async def test_invalid_values_name_the_field(
    http: httpx.AsyncClient, new_user: AppUser, body: dict, field: str
) -> None:
    r = await http.patch("/profile", json=body, headers=new_user.headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid" and [d["field"] for d in err["details"]] == [field], err


async def test_mass_assignment_is_refused_over_http_and_the_bus(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    other = await register_and_login(http)
    for extra in ({"user_id": other.id}, {"role": "admin"}, {"updated_at": "2020-01-01T00:00:00Z"}):
        r = await http.patch("/profile", json={"display_name": "Mallory", **extra}, headers=new_user.headers)
        assert r.status_code == 422, r.text
        assert [d["field"] for d in r.json()["error"]["details"]] == list(extra)
    # Straight on the bus, past the gateway (whose model would refuse it first), the service refuses it too.
    with pytest.raises(AtriumError) as err:
        await raw_call(stack, PROFILE_UPDATE, {"display_name": "Mallory", "user_id": other.id}, new_user)
    assert err.value.code == "invalid"
    mine = await call(stack.nc, PROFILE_GET, Empty(), token=new_user.access_token)
    theirs = await call(stack.nc, PROFILE_GET, Empty(), token=other.access_token)
    assert mine.display_name != "Mallory" and theirs.display_name != "Mallory"
    assert str(mine.user_id) == new_user.id and str(theirs.user_id) == other.id


async def raw_call(stack: Stack, desc, body: dict, user: AppUser):  # type: ignore[no-untyped-def]
    """Send a body the client-side model would refuse, to see what the service itself does."""
    msg = await stack.nc.request(
        desc.subject,
        json.dumps(body).encode(),
        headers={Header.AUTHORIZATION: f"Bearer {user.access_token}"},
        timeout=10,
    )
    return parse_reply(desc, msg.data)


async def test_avatar_upload_serves_a_256px_reencoded_image(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    h = new_user.headers
    assert (await http.get("/profile/avatar", headers=h)).status_code == 404
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make: metadata that must not survive
    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (10, 120, 200)).save(buf, "JPEG", exif=exif)
    r = await http.put("/profile/avatar", content=buf.getvalue(), headers={**h, "content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json()["has_avatar"] is True
    r = await http.get("/profile/avatar", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(r.content))
    assert served.size == (256, 256)
    assert b"SecretCam" not in r.content and not served.getexif()

    # Replacing keeps one avatar; deleting removes it.
    r = await http.put("/profile/avatar", content=png(), headers=h)
    assert r.status_code == 200
    r = await http.get("/profile/avatar", headers=h)
    assert r.headers["content-type"] == "image/png"
    r = await http.delete("/profile/avatar", headers=h)
    assert r.status_code == 200 and r.json()["has_avatar"] is False
    assert (await http.get("/profile/avatar", headers=h)).status_code == 404


async def test_a_deleted_user_leaves_no_profile_or_avatar(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    # The consumer of USER_DELETED, driven directly with the live service's dependencies.
    from datetime import UTC, datetime

    from contracts.auth import UserDeleted
    from contracts.profile import AVATAR_BUCKET
    from services.kit.bus import Ctx, ensure_object_store
    from services.kit.db import Database
    from services.profile import handlers

    assert (await http.put("/profile/avatar", content=png(), headers=new_user.headers)).status_code == 200
    db = Database(stack.db_urls["profile"], "profile")
    store = await ensure_object_store(stack.nc.jetstream(), AVATAR_BUCKET)
    try:
        async with db.session() as s:
            from sqlalchemy import text

            name = (
                await s.execute(
                    text("select avatar_object from profiles where user_id = :u"), {"u": new_user.id}
                )
            ).scalar_one()
        assert (await store.get(name)).data
        await handlers.forget_user(
            UserDeleted(user_id=UUID(new_user.id), deleted_at=datetime.now(UTC)),
            Ctx(request_id="t"),
            stack.services["profile"].deps_as(handlers.ProfileDeps),
        )
        async with db.session() as s:
            left = (
                await s.execute(text("select count(*) from profiles where user_id = :u"), {"u": new_user.id})
            ).scalar_one()
    finally:
        await db.dispose()
    assert left == 0
    from nats.js.errors import ObjectNotFoundError

    with pytest.raises(ObjectNotFoundError):
        await store.get(name)
