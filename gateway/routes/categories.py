"""`/api/v1/categories`: the caller's own categories."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from contracts import Empty
from contracts import docs_api as api

from ..bus import Call
from ..errors import errors
from ..transport import Token

router = APIRouter(prefix="/categories", tags=["documents"], responses=errors(401, 403))


@router.get("", response_model=api.CategoryList, summary="Your categories with document counts")
async def list_categories(call: Call, token: Token) -> api.CategoryList:
    return await call(api.CATEGORY_LIST, Empty(), token=token)


@router.post(
    "",
    status_code=201,
    response_model=api.CategoryPublic,
    summary="Create a category",
    responses=errors(409),
)
async def create_category(body: api.CategoryCreate, call: Call, token: Token) -> api.CategoryPublic:
    return await call(api.CATEGORY_CREATE, body, token=token)


@router.patch(
    "/{category_id}",
    response_model=api.CategoryPublic,
    summary="Rename a category",
    responses=errors(404, 409),
)
async def rename_category(
    category_id: UUID, body: api.CategoryCreate, call: Call, token: Token
) -> api.CategoryPublic:
    return await call(api.CATEGORY_UPDATE, api.CategoryUpdate(id=category_id, name=body.name), token=token)


@router.delete(
    "/{category_id}",
    status_code=204,
    summary="Delete a category (documents keep existing)",
    responses=errors(404),
)
async def delete_category(category_id: UUID, call: Call, token: Token) -> Response:
    await call(api.CATEGORY_DELETE, api.DocumentRef(id=category_id), token=token)
    return Response(status_code=204)
