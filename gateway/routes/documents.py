"""`/api/v1/documents`: upload (streamed into the Object Store), browse, edit, download, delete, re-process, bulk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from contracts import AtriumError, Empty, ErrorCode, Invalid, NotFound, Unavailable
from contracts import docs_api as api
from contracts.documents import MediaType

from ..bus import Call
from ..errors import errors
from ..export import export_zip
from ..http_types import BINARY, CommaLists, binary_response
from ..transport import Token
from ..uploads import MAX_FILES, content_disposition, documents_store, receive_files, remove, stream_object

router = APIRouter(prefix="/documents", tags=["documents"], responses=errors(401, 403))


class ListDocumentsQuery(CommaLists, api.ListDocuments):
    """`GET /documents`'s query string: the contract's filters, sort, page size and cursor."""


class UploadFailure(BaseModel):
    filename: str
    code: ErrorCode
    message: str
    details: Any = None


class UploadBatch(BaseModel):
    """Each file is recorded or refused on its own; the request fails only when every file is refused."""

    documents: list[api.UploadResult]
    errors: list[UploadFailure]


MULTIPART_FILES = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": BINARY, "maxItems": MAX_FILES}},
                    "required": ["file"],
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=UploadBatch,
    summary="Upload PDFs or scanned images (JPEG, PNG, TIFF; multipart, parts named 'file')",
    openapi_extra=MULTIPART_FILES,
    responses=errors(409, 413, 415, 507),
)
async def upload(request: Request, call: Call, token: Token) -> UploadBatch:
    policy: api.UploadPolicy = await call(api.UPLOAD_PREPARE, Empty(), token=token)
    files = await receive_files(request, policy)
    batch = UploadBatch(documents=[], errors=[])
    for f in files:
        try:
            # A dict: a filename the contract refuses (too long, a NUL) is an `invalid` error like any other.
            created = {"object_name": f.object_name, "filename": f.filename, "media_type": f.media_type}
            result: api.UploadResult = await call(api.DOCUMENT_CREATE, created, token=token)
            batch.documents.append(result)
        except AtriumError as err:
            # Refused before any service recorded it (the service removes the files it refuses itself).
            if isinstance(err, Unavailable | Invalid):
                await remove(await documents_store(request), str(f.object_name))
            if len(files) == 1:
                raise
            batch.errors.append(
                UploadFailure(filename=f.filename, code=err.code, message=err.message, details=err.details)
            )
    if not batch.documents and batch.errors:
        first = batch.errors[0]
        raise AtriumError(first.message, first.details, code=first.code)
    return batch


@router.get("", response_model=api.DocumentPage, summary="Filter, search, sort and page your documents")
async def list_documents(
    query: Annotated[ListDocumentsQuery, Query()], call: Call, token: Token
) -> api.DocumentPage:
    return await call(api.DOCUMENT_LIST, query, token=token)


@router.get(
    "/counts", response_model=api.DocumentCounts, summary="How many documents you have, in all and per status"
)
async def counts(
    query: Annotated[api.CountDocuments, Query()], call: Call, token: Token
) -> api.DocumentCounts:
    return await call(api.DOCUMENT_COUNTS, query, token=token)


@router.get(
    "/export",
    summary="Everything of yours as one zip: each original, and its fields, pages' text, categories and "
    "tasks as JSON (made while it downloads)",
    response_class=StreamingResponse,
    responses=binary_response(
        "application/zip",
        description="A zip: export.json (what and when), categories.json, and per document "
        "documents/<id>/document.json, pages.json and the original file. A failure after the download began "
        "cuts the zip off (it will not open); download it again.",
    ),
)
async def export_everything(request: Request, call: Call, token: Token) -> StreamingResponse:
    # The first page is asked for before the answer starts, so a refusal is an error response, not a broken zip.
    first: api.ExportPage = await call(api.DOCUMENT_EXPORT, api.ExportQuery(), token=token)
    day = datetime.now(UTC).date().isoformat()
    return StreamingResponse(
        export_zip(call, token, await documents_store(request), first),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="atrium-export-{day}.zip"'},
    )


@router.post(
    "/bulk",
    response_model=api.BulkResult,
    summary="One action over a selection (ids) or a filter",
    responses=errors(404),
)
async def bulk(body: api.BulkAction, call: Call, token: Token) -> api.BulkResult:
    return await call(api.DOCUMENT_BULK, body, token=token)


@router.get(
    "/{doc_id}",
    response_model=api.DocumentDetail,
    summary="A document with pages, fields and tasks",
    responses=errors(404),
)
async def get_document(doc_id: UUID, call: Call, token: Token) -> api.DocumentDetail:
    return await call(api.DOCUMENT_GET, api.DocumentRef(id=doc_id), token=token)


@router.patch(
    "/{doc_id}",
    response_model=api.DocumentDetail,
    summary="Edit the title or fields (kept on re-runs)",
    responses=errors(404, 409),
)
async def update_document(
    doc_id: UUID, body: api.DocumentEdit, call: Call, token: Token
) -> api.DocumentDetail:
    edit = api.UpdateDocument(id=doc_id, **body.model_dump(exclude_unset=True))
    return await call(api.DOCUMENT_UPDATE, edit, token=token)


@router.delete("/{doc_id}", status_code=204, summary="Delete a document and its file", responses=errors(404))
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


async def file_response(
    ticket: api.DownloadTicket, request: Request, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """A stored original streamed as its download (a share link adds its private headers)."""
    body = await _stream_or_404(await documents_store(request), ticket.object_name)
    return StreamingResponse(
        body,
        media_type=ticket.content_type,
        headers={
            **(headers or {}),
            "Content-Disposition": content_disposition(ticket.filename),
            "Content-Length": str(ticket.size),
        },
    )


@router.get(
    "/{doc_id}/file",
    summary="Download the original (a PDF, or the image as uploaded)",
    response_class=StreamingResponse,
    responses={
        **binary_response(
            *get_args(MediaType), description="The file as uploaded: a PDF, or a JPEG, PNG or TIFF image."
        ),
        **errors(404),
    },
)
async def download(doc_id: UUID, request: Request, call: Call, token: Token) -> StreamingResponse:
    ticket: api.DownloadTicket = await call(api.DOCUMENT_DOWNLOAD, api.DocumentRef(id=doc_id), token=token)
    return await file_response(ticket, request)


@router.get(
    "/{doc_id}/text-layer",
    summary="Download the PDF with text layer (the pages with OCR's words as invisible text)",
    response_class=StreamingResponse,
    responses={
        **binary_response(
            "application/pdf",
            description="A copy of the document whose scanned pages carry the recognised words as invisible, "
            "searchable text; the original is unchanged.",
        ),
        **errors(404),
    },
)
async def download_text_layer(doc_id: UUID, request: Request, call: Call, token: Token) -> StreamingResponse:
    ticket: api.DownloadTicket = await call(api.DOCUMENT_TEXT_LAYER, api.DocumentRef(id=doc_id), token=token)
    return await file_response(ticket, request)


@router.get(
    "/{doc_id}/pages/{page}/preview",
    summary="A page's PNG preview (the first pages of the current run)",
    response_class=StreamingResponse,
    responses={**binary_response("image/png", description="The page as a PNG image."), **errors(404)},
)
async def page_preview(
    doc_id: UUID,
    page: Annotated[int, Path(ge=1, le=api.PAGE_NUMBER_MAX)],
    request: Request,
    call: Call,
    token: Token,
) -> StreamingResponse:
    ticket: api.PreviewTicket = await call(
        api.DOCUMENT_PREVIEW, api.PreviewRef(document_id=doc_id, page=page), token=token
    )
    body = await _stream_or_404(await documents_store(request), ticket.object_name)
    return StreamingResponse(
        body,
        media_type=ticket.content_type,
        headers={"Content-Length": str(ticket.size), "Cache-Control": "private, max-age=3600"},
    )


@router.post(
    "/{doc_id}/reprocess",
    response_model=api.DocumentSummary,
    summary="Run the pipeline again",
    responses=errors(404, 409, 429),
)
async def reprocess(doc_id: UUID, call: Call, token: Token) -> api.DocumentSummary:
    return await call(api.DOCUMENT_REPROCESS, api.DocumentRef(id=doc_id), token=token)
