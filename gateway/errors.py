"""Every failure leaves the gateway as `{"error": {code, message, details, request_id}}` with one status per code."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import HTTP_STATUS, AtriumError, ErrorCode
from services.kit.bus import validation_details
from services.kit.outage import RETRY_AFTER_S, outage

from .http_types import component

log = logging.getLogger("atrium.gateway")


class ErrorInfo(BaseModel):
    code: ErrorCode = Field(description="One code per HTTP status (see the response's description).")
    message: str = Field(description="What was wrong and what to do, in plain words.")
    details: Any = Field(
        default=None,
        description="For `invalid`: a list of `{field, message, type}`; otherwise an object or null.",
    )
    request_id: str = Field(description="Also in the `X-Request-ID` header; the logs carry it.")


class ErrorEnvelope(BaseModel):
    """The body of every failure the API answers."""

    error: ErrorInfo


_CODE_OF_STATUS = {status: code for code, status in HTTP_STATUS.items()}

# What each status means on this API, for the OpenAPI document (the code in the body says the same).
_MEANING = {
    401: "Not signed in, or the access token expired or was revoked: sign in or refresh the session.",
    403: "Not allowed: administrators only, an app not granted to you, or a cookie-authenticated "
    "request without the X-CSRF-Token header.",
    404: "No such object among yours (another user's objects are not found either).",
    409: "The request conflicts with the current state (a duplicate, a quota, or a concurrent change).",
    413: "The body is larger than the limit, or the upload exceeds your storage quota.",
    415: "The body is not of a supported type.",
    422: "The request is not valid: `details` lists the fields.",
    429: "Too many attempts: wait `Retry-After` seconds.",
    500: "A failure on our side (a bug); it is logged with the request id.",
    503: "A service, the message bus or the database is not reachable (restarting): try again after "
    "`Retry-After` seconds.",
    504: "A service did not answer in time (busy or restarting): try again after `Retry-After` seconds.",
    507: "The storage budget is used up (a full document store): nothing was stored.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the error envelope as its body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": f"`{_CODE_OF_STATUS[status].value}`: {_MEANING[status]}",
            # By reference, not `model`: FastAPI would file the body under a streaming route's media type.
            "content": {"application/json": {"schema": component(ErrorEnvelope)}},
        }
        if status in (429, 503, 504):
            response["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        responses[status] = response
    return responses


_STATUS_TO_CODE = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED,
    429: ErrorCode.RATE_LIMITED,
}


def error_response(
    request: Request,
    code: ErrorCode,
    message: str,
    details: object = None,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    rid = getattr(request.state, "request_id", "")
    body = ErrorEnvelope(error=ErrorInfo(code=code, message=message, details=details, request_id=rid))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status or HTTP_STATUS[code], headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(AtriumError)
    async def atrium_error(request: Request, exc: AtriumError) -> JSONResponse:
        headers = None
        # A back end that is down (503) or too slow (504, the bus timed out) is worth asking again later.
        if exc.code in (ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
            retry = (exc.details or {}).get("retry_after_s") if isinstance(exc.details, dict) else None
            default = 60 if exc.code == ErrorCode.RATE_LIMITED else RETRY_AFTER_S
            headers = {"Retry-After": str(int(retry or default))}
        if exc.code in (ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
            log.warning("%s on %s %s: %s", exc.code.value, request.method, request.url.path, exc.message)
        return error_response(request, exc.code, exc.message, exc.details, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        return error_response(
            request, ErrorCode.INVALID, "The request is not valid: fix the listed fields.", details
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_TO_CODE.get(
            exc.status_code, ErrorCode.INVALID if exc.status_code < 500 else ErrorCode.INTERNAL
        )
        # 404, 405 and the like keep their status; anything else gets its code's one status (a body
        # FastAPI cannot decode is a 400 there, `invalid` — 422 — here).
        status = exc.status_code if exc.status_code in _STATUS_TO_CODE else HTTP_STATUS[code]
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = f"There is no {request.url.path}. See /api/docs for the API."
        elif exc.status_code == 400:
            message = "The request body could not be read: send UTF-8 JSON (or the documented content type)."
        return error_response(request, code, message, status=status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        away = outage(exc)  # NATS or PostgreSQL restarting: 503 with Retry-After, not a 500
        if away is not None:
            return await atrium_error(request, away)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, ErrorCode.INTERNAL, "Something failed on our side; it is logged with this request id."
        )


__all__ = ["ErrorEnvelope", "errors", "install", "error_response", "validation_details"]
