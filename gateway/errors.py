"""Every failure leaves the gateway as `{"error": {code, message, details, request_id}}` with one status per code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import HTTP_STATUS, AtriumError, ErrorCode, RateLimited
from services.kit.bus import validation_details

log = logging.getLogger("atrium.gateway")

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
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    rid = getattr(request.state, "request_id", "")
    body = {"error": {"code": code.value, "message": message, "details": details, "request_id": rid}}
    return JSONResponse(body, status_code=status or HTTP_STATUS[code], headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(AtriumError)
    async def atrium_error(request: Request, exc: AtriumError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited) or exc.code == ErrorCode.RATE_LIMITED:
            retry = (exc.details or {}).get("retry_after_s") if isinstance(exc.details, dict) else None
            headers = {"Retry-After": str(int(retry or 60))}
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
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = f"There is no {request.url.path}. See /api/docs for the API."
        return error_response(request, code, message, status=exc.status_code)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, ErrorCode.INTERNAL, "Something failed on our side; it is logged with this request id."
        )


__all__ = ["install", "error_response", "validation_details"]
