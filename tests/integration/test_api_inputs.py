"""What schemathesis found answered 500 (or an undocumented status), each now a named `invalid` (422).

The fuzz (test_api_fuzz.py, slow) meets a NUL character or an extreme number only by chance; these pin each
case it found, so a regression shows in the quick suite too.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import CORPUS, AppUser

NUL = "a\x00b"


async def invalid_field(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid", error
    return error["details"][0]["field"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("post", "/categories", {"json": {"name": NUL}}, "name"),
        ("patch", "/profile", {"json": {"display_name": NUL}}, "display_name"),
        ("get", "/documents", {"params": {"q": NUL}}, "query.q"),
        ("get", "/documents", {"params": {"sender": NUL}}, "query.sender"),
        ("get", "/tasks", {"params": {"filename": NUL}}, "query.filename"),
        (
            "post",
            "/documents/bulk",
            {"json": {"action": "delete", "filter": {"sender": NUL}}},
            "filter.sender",
        ),
    ],
)
async def test_text_with_a_nul_character_is_refused(
    http: httpx.AsyncClient, new_user: AppUser, method: str, path: str, kwargs: dict, field: str
) -> None:
    r = await http.request(method.upper(), path, headers=new_user.headers, **kwargs)
    assert await invalid_field(r) == field


async def test_admin_lists_refuse_nul_and_offsets_past_the_bound(
    http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    for path, params, field in (
        ("/admin/users", {"search": NUL}, "query.search"),
        ("/admin/audit", {"action": NUL}, "query.action"),
        ("/admin/users", {"offset": 10**19}, "query.offset"),
        ("/admin/audit", {"offset": 10**19}, "query.offset"),
    ):
        r = await http.get(path, params=params, headers=new_admin.headers)
        assert await invalid_field(r) == field
    r = await http.post("/admin/groups", json={"name": NUL}, headers=new_admin.headers)
    assert await invalid_field(r) == "name"
    r = await http.post(
        "/auth/register", json={"email": "nul@example.com", "password": "x" * 12, "full_name": NUL}
    )
    assert await invalid_field(r) == "full_name"


async def test_an_amount_beyond_what_is_stored_is_refused(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await http.post(
        "/documents",
        headers=new_user.headers,
        files={"file": ("invoice.pdf", (CORPUS / "synthetic" / "invoice_1p.pdf").read_bytes())},
    )
    doc = r.json()["documents"][0]["document"]["id"]
    r = await http.patch(
        f"/documents/{doc}", json={"fields": {"total_amount": "1e20"}}, headers=new_user.headers
    )
    assert await invalid_field(r) == "fields.total_amount"
    r = await http.patch(f"/documents/{doc}", json={"id": doc, "title": "x"}, headers=new_user.headers)
    assert await invalid_field(r) == "id", "the id is the path's, never the body's"


async def test_a_body_that_is_not_utf8_json_is_invalid_not_400(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    r = await http.post(
        "/categories",
        content=b"\xff\xfe not json",
        headers={**new_user.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", r.text


async def test_list_filters_repeat_or_take_commas(http: httpx.AsyncClient, new_user: AppUser) -> None:
    repeated = await http.get(
        "/tasks", params=[("status", "failed"), ("status", "queued")], headers=new_user.headers
    )
    commas = await http.get("/tasks", params={"status": "failed,queued"}, headers=new_user.headers)
    assert repeated.status_code == commas.status_code == 200
    r = await http.get("/tasks", params={"status": "failed,bogus"}, headers=new_user.headers)
    assert await invalid_field(r) == "query.status.1"
    r = await http.get("/documents", params={"colour": "red"}, headers=new_user.headers)
    assert await invalid_field(r) == "query.colour", "an unknown parameter is named, not ignored"
