"""Shared helpers for the documents tests: upload over HTTP, or record documents and pipeline results
through the service's own handlers (real Postgres, real Object Store) so list and search tests are exact."""

from __future__ import annotations

import dataclasses
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.docs_api import CreateDocument
from contracts.documents import (
    OBJECT_BUCKET,
    DocumentAnalyzed,
    DocumentExtracted,
    DocumentsSettingsStored,
    ExtractedFields,
    ExtractionResult,
    PageText,
    PdfMetadata,
    result_object_name,
)
from services.docs.access import Caller, acting
from services.docs.handlers import documents, pipeline, uploads
from services.docs.handlers.common import DocsDeps
from services.kit.bus import Ctx
from services.kit.security import Actor
from tests.conftest import CORPUS, AppUser, Stack

INVOICE = CORPUS / "synthetic" / "invoice_1p.pdf"
LETTER = CORPUS / "synthetic" / "letter_1p.pdf"
LEADING_BYTES = CORPUS / "public" / "pdfplumber" / "tests" / "pdfs" / "issue-848.pdf"


async def register_other(http: httpx.AsyncClient) -> AppUser:
    from tests.conftest import register_and_login

    return await register_and_login(http)


def pdf_bytes(marker: str = "") -> bytes:
    """A distinct small PDF-looking body (the service never parses it; the workers may fail it)."""
    return b"%PDF-1.4\n% " + marker.encode() + uuid.uuid4().hex.encode() + b"\n%%EOF\n"


async def upload(
    http: httpx.AsyncClient,
    user: AppUser,
    data: bytes | Path,
    filename: str = "file.pdf",
    content_type: str = "application/pdf",
) -> httpx.Response:
    body = data.read_bytes() if isinstance(data, Path) else data
    return await http.post("/documents", headers=user.headers, files={"file": (filename, body, content_type)})


def deps(stack: Stack, **settings: Any) -> DocsDeps:
    """The live service's dependencies without announcing work to the workers (the test plays their part),
    optionally with other settings (without touching the shared KV)."""
    live = stack.services["docs"].deps_as(DocsDeps)
    custom = DocumentsSettingsStored(**settings) if settings else None
    return dataclasses.replace(live, queue_work=False, settings=(lambda: custom) if custom else live.settings)


async def actor(stack: Stack, user: AppUser) -> Actor:
    verifier = stack.services["docs"].verifier
    assert verifier is not None
    return await verifier.verify(f"Bearer {user.access_token}")


def owner_session(
    stack: Stack, user: AppUser, *, write: bool = False
) -> AbstractAsyncContextManager[AsyncSession]:
    """A session (a transaction when `write`) of the documents database in which `user` acts: row-level
    security lets it see and change what they may, as the service's handlers do."""
    caller = Caller(
        Actor(user_id=uuid.UUID(user.id), role="user", session_id="test", token=user.access_token)
    )
    return acting(deps(stack).db, caller, write=write)


def ctx(a: Actor | None = None) -> Ctx:
    return Ctx(request_id=uuid.uuid4().hex, actor=a)


async def store(stack: Stack) -> Any:
    return await stack.nc.jetstream().object_store(OBJECT_BUCKET)


async def put_blob(stack: Stack, data: bytes) -> uuid.UUID:
    name = uuid.uuid4()
    await (await store(stack)).put(str(name), data)
    return name


async def create(
    stack: Stack, user: AppUser, filename: str = "doc.pdf", data: bytes | None = None, **settings: Any
):
    a = await actor(stack, user)
    obj = await put_blob(stack, data or pdf_bytes(filename))
    return await uploads.create_document(
        CreateDocument(object_name=obj, filename=filename), ctx(a), deps(stack, **settings)
    )


async def extracted(
    stack: Stack,
    doc_id: uuid.UUID,
    owner: uuid.UUID,
    run_id: uuid.UUID,
    texts: list[str],
    *,
    tables: list[Any] | None = None,
    needs_ocr: bool = False,
) -> DocumentExtracted:
    """Store an extraction result as the text worker does and apply its event."""
    result = ExtractionResult(
        document_id=doc_id,
        run_id=run_id,
        page_count=len(texts),
        needs_ocr=needs_ocr,
        pages=[
            PageText(number=i + 1, text=t, tables=(tables or [[]] * len(texts))[i] if tables else [])
            for i, t in enumerate(texts)
        ],
        metadata=PdfMetadata(title="meta title"),
        engine="test",
    )
    name = result_object_name(doc_id, run_id)
    await (await store(stack)).put(name, result.model_dump_json().encode())
    now = datetime.now(UTC)
    ev = DocumentExtracted(
        document_id=doc_id,
        owner_id=owner,
        run_id=run_id,
        page_count=len(texts),
        needs_ocr=needs_ocr,
        chars=sum(map(len, texts)),
        table_count=0,
        metadata=result.metadata,
        result_object=name,
        engine="test",
        worker="test-worker",
        attempt=1,
        started_at=now,
        finished_at=now,
    )
    await pipeline.on_extracted(ev, ctx(), deps(stack))
    return ev


async def analyzed(
    stack: Stack,
    doc_id: uuid.UUID,
    owner: uuid.UUID,
    run_id: uuid.UUID,
    settings: dict[str, Any] | None = None,
    **fields: Any,
) -> DocumentAnalyzed:
    now = datetime.now(UTC)
    ev = DocumentAnalyzed(
        document_id=doc_id,
        owner_id=owner,
        run_id=run_id,
        fields=ExtractedFields(**fields),
        provider="builtin",
        model="rules-v1",
        tokens_in=10,
        tokens_out=5,
        worker="test-ai",
        attempt=1,
        started_at=now,
        finished_at=now,
    )
    await pipeline.on_analyzed(ev, ctx(), deps(stack, **(settings or {})))
    return ev


async def get(stack: Stack, user: AppUser, doc_id: uuid.UUID):  # type: ignore[no-untyped-def]
    from contracts.docs_api import DocumentRef

    return await documents.get_document(DocumentRef(id=doc_id), ctx(await actor(stack, user)), deps(stack))


async def ready_document(
    stack: Stack,
    user: AppUser,
    filename: str,
    text: str,
    *,
    document_type: str | None = None,
    sender: str | None = None,
    document_date: date | None = None,
    categories: list[str] | None = None,
) -> uuid.UUID:
    res = await create(stack, user, filename)
    d = res.document
    owner = uuid.UUID(user.id)
    await extracted(stack, d.id, owner, d.run_id, [text])
    await analyzed(
        stack,
        d.id,
        owner,
        d.run_id,
        document_type=document_type,
        sender=sender,
        document_date=document_date,
        suggested_categories=categories or [],
    )
    return d.id
