"""Enforcement at the owner of the data: the documents service refuses a user whose grant was just
revoked, on the very next request, through the gateway and straight on the bus."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contracts import AtriumError
from tests.conftest import AppUser, Stack

DOCUMENTS = "documents"


@pytest.fixture(autouse=True)
def needs_docs(stack: Stack) -> None:
    if "docs" not in stack.services or "permissions" not in stack.services:
        pytest.skip("needs the docs and permissions services")


async def test_revoked_documents_grant_is_refused_on_the_next_request(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, new_user: AppUser
) -> None:
    from contracts import docs_api
    from services.kit.client import call

    h = new_user.headers
    # Documents is granted by default: the new user may use it at once.
    r = await http.get("/documents", headers=h)
    assert r.status_code == 200, r.text
    assert DOCUMENTS in {a["key"] for a in (await http.get("/apps", headers=h)).json()["apps"]}
    r = await http.get("/documents", headers=h)  # now answered from the guard's cache
    assert r.status_code == 200

    r = await http.delete(f"/admin/users/{new_user.id}/grants/{DOCUMENTS}", headers=new_admin.headers)
    assert r.status_code == 204, r.text
    r = await http.get("/documents", headers=h)
    assert r.status_code == 403, r.text
    assert "Documents" in r.json()["error"]["message"] and "administrator" in r.json()["error"]["message"]
    assert DOCUMENTS not in {a["key"] for a in (await http.get("/apps", headers=h)).json()["apps"]}
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, docs_api.DOCUMENT_LIST, {}, token=new_user.access_token)
    assert err.value.code == "forbidden"
    if "extract" in stack.services:  # the worker's one Documents subject checks the grant too
        from contracts.documents import PREVIEW_RENDER, RenderPreviews

        render = RenderPreviews(
            document_id=uuid.uuid4(),
            owner_id=new_user.id,
            run_id=uuid.uuid4(),
            object_name=str(uuid.uuid4()),
            page_count=1,
            page=1,
        )
        with pytest.raises(AtriumError) as err:
            await call(stack.nc, PREVIEW_RENDER, render, token=new_user.access_token, timeout=10)
        assert err.value.code == "forbidden"

    # Granting it back works just as fast; an admin never needs a grant.
    r = await http.put(f"/admin/users/{new_user.id}/grants/{DOCUMENTS}", headers=new_admin.headers)
    assert r.status_code == 200
    assert (await http.get("/documents", headers=h)).status_code == 200
    assert (await http.get("/documents", headers=new_admin.headers)).status_code == 200
