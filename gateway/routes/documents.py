"""`/api/v1/documents`: upload (streamed into the Object Store), browse, edit, download, delete, re-process, bulk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_origin
from uuid import UUID

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from contracts import AtriumError, Empty, NotFound, Unavailable
from contracts import docs_api as api

from ..bus import Call
from ..transport import Token
from ..uploads import content_disposition, documents_store, receive_pdfs, remove, stream_object

router = APIRouter(prefix="/documents", tags=["documents"])


def query_model(request: Request, model: type[BaseModel], **fixed: Any) -> dict[str, Any]:
    """Query parameters as a contract's fields: list fields repeat (`?status=a&status=b`) or use commas."""
    data: dict[str, Any] = {}
    for key in request.query_params:
        info = model.model_fields.get(key)
        values = request.query_params.getlist(key)
        annotation = info.annotation if info else None
        if annotation is not None and get_origin(annotation) is list:
            data[key] = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
        else:
            data[key] = values[-1]
    data.update(fixed)
    return data


@router.post("", status_code=201, summary="Upload one or more PDFs (multipart, parts named 'file')")
async def upload(request: Request, call: Call, token: Token) -> JSONResponse:
    policy: api.UploadPolicy = await call(api.UPLOAD_PREPARE, Empty(), token=token)
    files = await receive_pdfs(request, policy)
    created: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for f in files:
        try:
            result: api.UploadResult = await call(
                api.DOCUMENT_CREATE,
                api.CreateDocument(object_name=f.object_name, filename=f.filename),
                token=token,
            )
            created.append(result.model_dump(mode="json"))
        except AtriumError as err:
            if isinstance(
                err, Unavailable
            ):  # nobody recorded it (the service removes files it refuses itself)
                await remove(await documents_store(request), str(f.object_name))
            if len(files) == 1:
                raise
            errors.append(
                {
                    "filename": f.filename,
                    "code": err.code.value,
                    "message": err.message,
                    "details": err.details,
                }
            )
    if not created and errors:
        first = errors[0]
        raise AtriumError(first["message"], first["details"], code=first["code"])
    return JSONResponse({"documents": created, "errors": errors}, status_code=201)


@router.get("", response_model=api.DocumentPage, summary="Filter, search, sort and page your documents")
async def list_documents(request: Request, call: Call, token: Token) -> api.DocumentPage:
    return await call(api.DOCUMENT_LIST, query_model(request, api.ListDocuments), token=token)


@router.get(
    "/counts", response_model=api.DocumentCounts, summary="How many documents you have, in all and per status"
)
async def counts(request: Request, call: Call, token: Token) -> api.DocumentCounts:
    return await call(api.DOCUMENT_COUNTS, query_model(request, api.CountDocuments), token=token)


@router.post("/bulk", response_model=api.BulkResult, summary="One action over a selection (ids) or a filter")
async def bulk(body: api.BulkAction, call: Call, token: Token) -> api.BulkResult:
    return await call(api.DOCUMENT_BULK, body, token=token)


@router.get("/{doc_id}", response_model=api.DocumentDetail, summary="A document with pages, fields and tasks")
async def get_document(doc_id: UUID, call: Call, token: Token) -> api.DocumentDetail:
    return await call(api.DOCUMENT_GET, api.DocumentRef(id=doc_id), token=token)


@router.patch(
    "/{doc_id}", response_model=api.DocumentDetail, summary="Edit the title or fields (kept on re-runs)"
)
async def update_document(
    doc_id: UUID, call: Call, token: Token, body: dict[str, Any] = Body(...)
) -> api.DocumentDetail:
    return await call(api.DOCUMENT_UPDATE, {**body, "id": doc_id}, token=token)


@router.delete("/{doc_id}", status_code=204, summary="Delete a document and its file")
async def delete_document(doc_id: UUID, call: Call, token: Token) -> Response:
    await call(api.DOCUMENT_DELETE, api.DocumentRef(id=doc_id), token=token)
    return Response(status_code=204)


async def _stream_or_404(store: Any, name: str) -> AsyncIterator[bytes]:
    """The object's chunks; fails as an error response, not a broken stream, if the blob is gone."""
    chunks = stream_object(store, name)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except Exception:
        raise NotFound("The file of this document is missing from the store.") from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return body()


@router.get("/{doc_id}/file", summary="Download the original PDF")
async def download(doc_id: UUID, request: Request, call: Call, token: Token) -> StreamingResponse:
    ticket: api.DownloadTicket = await call(api.DOCUMENT_DOWNLOAD, api.DocumentRef(id=doc_id), token=token)
    body = await _stream_or_404(await documents_store(request), ticket.object_name)
    return StreamingResponse(
        body,
        media_type=ticket.content_type,
        headers={
            "Content-Disposition": content_disposition(ticket.filename),
            "Content-Length": str(ticket.size),
        },
    )


@router.get(
    "/{doc_id}/pages/{page}/preview", summary="A page's PNG preview (the first pages of the current run)"
)
async def page_preview(
    doc_id: UUID, page: int, request: Request, call: Call, token: Token
) -> StreamingResponse:
    # A dict, so an out-of-range page is the service's validation error (422), not a gateway crash.
    ticket: api.PreviewTicket = await call(
        api.DOCUMENT_PREVIEW, {"document_id": doc_id, "page": page}, token=token
    )
    body = await _stream_or_404(await documents_store(request), ticket.object_name)
    return StreamingResponse(
        body,
        media_type=ticket.content_type,
        headers={"Content-Length": str(ticket.size), "Cache-Control": "private, max-age=3600"},
    )


@router.post("/{doc_id}/reprocess", response_model=api.DocumentSummary, summary="Run the pipeline again")
async def reprocess(doc_id: UUID, call: Call, token: Token) -> api.DocumentSummary:
    return await call(api.DOCUMENT_REPROCESS, api.DocumentRef(id=doc_id), token=token)
