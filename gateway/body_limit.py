"""Request bodies are capped before they are read whole (issue 13 item 3).

Every JSON and form body is limited to `GatewaySettings.max_body_bytes` (ATRIUM_MAX_BODY_KB): a declared
`Content-Length` above it is answered with 413 at once, without reading a byte; a chunked or lying body
is counted as it arrives and stopped at the limit. The two streamed uploads (documents and the avatar)
are exempt here because they enforce their own, larger limits as they stream.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import HTTP_STATUS, ErrorCode

from .errors import ErrorEnvelope, ErrorInfo

# (method, path) of the routes that stream their body under a limit of their own.
STREAMED_UPLOADS = {("POST", "/api/v1/documents"), ("PUT", "/api/v1/profile/avatar")}


def too_large_message(limit: int) -> str:
    return (
        f"The request body is larger than {limit // 1024} KB, the limit for JSON and form bodies; "
        "send less (files go to the upload endpoints)."
    )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) in STREAMED_UPLOADS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Reaches the route's body parsing, which re-raises it; errors.install turns it into
                    # the 413 envelope.
                    raise HTTPException(HTTP_STATUS[ErrorCode.TOO_LARGE], too_large_message(limit))
            return message

        await self.app(scope, counted, send)

    async def refuse(self, scope: Scope, send: Send) -> None:
        info = ErrorInfo(
            code=ErrorCode.TOO_LARGE,
            message=too_large_message(self.max_bytes),
            details={"limit_bytes": self.max_bytes},
            request_id=scope.get("state", {}).get("request_id", ""),
        )
        body = ErrorEnvelope(error=info).model_dump(mode="json")
        # Connection: close, so the server does not wait for (or read) the body nobody will use.
        response = JSONResponse(
            body, status_code=HTTP_STATUS[ErrorCode.TOO_LARGE], headers={"Connection": "close"}
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
