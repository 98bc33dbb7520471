"""Sharing: who has access to a document or a category, sharing with users and groups, share links — and the
public side of a link (`/share-links/{token}/…`, no account), which the documents service rate limits and
audits. The service decides everything; these routes only translate."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts import Empty
from contracts import sharing as api
from contracts.docs_api import DocumentRef
from contracts.permissions import GROUP_DIRECTORY, GroupNames

from ..bus import Call
from ..errors import errors
from ..http_types import binary_response
from ..transport import Token
from ..uploads import documents_store
from .documents import _stream_or_404, file_response

router = APIRouter(tags=["sharing"])


class LinkPassword(BaseModel):
    """The password a link's owner set, to open it."""

    password: str = Field(max_length=200)


# Signed-in routes (a cookie request without its CSRF header: 403); the visitor's routes need no account.
SIGNED_IN = errors(401, 403)

LinkToken = Annotated[str, Path(pattern=api.LINK_TOKEN_PATTERN, description="The token from the link")]
Ticket = Annotated[str | None, Query(max_length=500, description="From opening a link with a password")]

# A link's answers are for its visitor only: not cached, not indexed, and the token never leaves in a Referer.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@router.get(
    "/documents/{doc_id}/shares",
    response_model=api.ShareList,
    responses={**SIGNED_IN, **errors(404)},
    summary="Who has access to a document (its owner: every share; others: their own)",
)
async def document_shares(doc_id: UUID, call: Call, token: Token) -> api.ShareList:
    return await call(api.SHARE_LIST, api.ShareTarget(document_id=doc_id), token=token)


@router.post(
    "/documents/{doc_id}/shares",
    status_code=201,
    response_model=api.SharePublic,
    responses={**SIGNED_IN, **errors(404, 429)},
    summary="Share a document with a user (by email) or a group; again: change the role",
)
async def share_document(doc_id: UUID, body: api.ShareCreate, call: Call, token: Token) -> api.SharePublic:
    return await call(
        api.SHARE_GRANT, {**body.model_dump(exclude_none=True), "document_id": doc_id}, token=token
    )


@router.get(
    "/categories/{category_id}/shares",
    response_model=api.ShareList,
    responses={**SIGNED_IN, **errors(404)},
    summary="Who your category (every document you file under it) is shared with",
)
async def category_shares(category_id: UUID, call: Call, token: Token) -> api.ShareList:
    return await call(api.SHARE_LIST, api.ShareTarget(category_id=category_id), token=token)


@router.post(
    "/categories/{category_id}/shares",
    status_code=201,
    response_model=api.SharePublic,
    responses={**SIGNED_IN, **errors(404, 429)},
    summary="Share a category: every document you file under it, now and later",
)
async def share_category(
    category_id: UUID, body: api.ShareCreate, call: Call, token: Token
) -> api.SharePublic:
    return await call(
        api.SHARE_GRANT, {**body.model_dump(exclude_none=True), "category_id": category_id}, token=token
    )


@router.delete(
    "/shares/{share_id}",
    status_code=204,
    responses={**SIGNED_IN, **errors(404)},
    summary="Take a share back (effective at once)",
)
async def revoke_share(share_id: UUID, call: Call, token: Token) -> Response:
    await call(api.SHARE_REVOKE, api.ShareRef(id=share_id), token=token)
    return Response(status_code=204)


@router.get(
    "/sharing/groups",
    response_model=GroupNames,
    responses=SIGNED_IN,
    summary="The groups a document can be shared with",
)
async def groups(call: Call, token: Token) -> GroupNames:
    return await call(GROUP_DIRECTORY, Empty(), token=token)


@router.get(
    "/documents/{doc_id}/links",
    response_model=api.LinkList,
    responses={**SIGNED_IN, **errors(404)},
    summary="A document's share links, with their latest uses",
)
async def list_links(doc_id: UUID, call: Call, token: Token) -> api.LinkList:
    return await call(api.LINK_LIST, DocumentRef(id=doc_id), token=token)


@router.post(
    "/documents/{doc_id}/links",
    status_code=201,
    response_model=api.LinkCreated,
    responses={**SIGNED_IN, **errors(404)},
    summary="Create a share link (its token is shown once)",
)
async def create_link(
    doc_id: UUID, call: Call, token: Token, body: Annotated[api.LinkCreate, Body()] = api.LinkCreate()
) -> api.LinkCreated:
    payload = {**body.model_dump(mode="json", exclude_none=True), "document_id": doc_id}
    if body.password is not None:
        payload["password"] = body.password.get_secret_value()
    return await call(api.LINK_CREATE, payload, token=token)


@router.delete(
    "/links/{link_id}", status_code=204, responses={**SIGNED_IN, **errors(404)}, summary="Revoke a share link"
)
async def revoke_link(link_id: UUID, call: Call, token: Token) -> Response:
    await call(api.LINK_REVOKE, api.LinkRef(id=link_id), token=token)
    return Response(status_code=204)


# ---- the visitor's side: no account ----------------------------------------------------------------


@router.get(
    "/share-links/{link_token}",
    response_model=api.LinkInfo,
    responses=errors(404, 429),
    summary="What a share link gives (public; a link with a password says so and nothing else)",
)
async def open_link(link_token: LinkToken, call: Call, response: Response) -> api.LinkInfo:
    response.headers.update(PRIVATE)
    return await call(api.LINK_OPEN, {"token": link_token})


@router.post(
    "/share-links/{link_token}",
    response_model=api.LinkInfo,
    responses=errors(404, 429),
    summary="Open a share link with its password (public): the answer carries a ticket for its file or pages",
)
async def unlock_link(
    link_token: LinkToken,
    call: Call,
    response: Response,
    body: LinkPassword,
) -> api.LinkInfo:
    response.headers.update(PRIVATE)
    return await call(api.LINK_OPEN, {"token": link_token, "password": body.password})


@router.get(
    "/share-links/{link_token}/file",
    responses={**binary_response("application/pdf", description="The PDF, as uploaded."), **errors(404, 429)},
    summary="Download the file of a download link (public)",
    response_class=StreamingResponse,
)
async def link_file(
    link_token: LinkToken, request: Request, call: Call, ticket: Ticket = None
) -> StreamingResponse:
    got: api.DownloadTicket = await call(api.LINK_FILE, {"token": link_token, "ticket": ticket})
    return await file_response(got, request, PRIVATE)


@router.get(
    "/share-links/{link_token}/pages/{page}/preview",
    responses={**binary_response("image/png", description="The page as a PNG image."), **errors(404, 429)},
    summary="A page's preview through a preview link (public)",
    response_class=StreamingResponse,
)
async def link_preview(
    link_token: LinkToken, page: int, request: Request, call: Call, ticket: Ticket = None
) -> StreamingResponse:
    got: api.PreviewTicket = await call(
        api.LINK_PREVIEW, {"token": link_token, "ticket": ticket, "page": page}
    )
    body = await _stream_or_404(await documents_store(request), got.object_name)
    return StreamingResponse(
        body, media_type=got.content_type, headers={**PRIVATE, "Content-Length": str(got.size)}
    )
