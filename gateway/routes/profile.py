"""`/api/v1/profile`: the caller's own profile and avatar (thin routes over `profile.*`).

The avatar upload is the raw image as the request body (any Content-Type; the service decides by
content). The gateway reads at most the size limit and refuses anything larger before it touches
the bus; the bytes then travel base64 in the JSON request (2 MB → 2.7 MB, well under NATS's 8 MB
max payload), which keeps the service's size and content checks the only source of truth.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request, Response

from contracts import Empty, Invalid, TooLarge
from contracts.profile import (
    AVATAR_DELETE,
    AVATAR_GET,
    AVATAR_MAX_BYTES,
    AVATAR_SET,
    PROFILE_GET,
    PROFILE_UPDATE,
    AvatarImage,
    ProfilePublic,
    ProfileUpdate,
)

from ..bus import Call
from ..errors import errors
from ..http_types import binary_body, binary_response
from ..transport import Token

router = APIRouter(prefix="/profile", tags=["profile"], responses=errors(401))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


def _too_large(size: int | None = None) -> TooLarge:
    got = f" ({size / 1048576:.1f} MB)" if size else ""
    return TooLarge(
        f"The avatar is larger than {AVATAR_MAX_BYTES // 1048576} MB{got}; choose a smaller image.",
        {"field": "avatar", "limit_bytes": AVATAR_MAX_BYTES},
    )


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("", response_model=ProfilePublic, summary="My profile")
async def get_profile(call: Call, token: Token) -> ProfilePublic:
    return await call(PROFILE_GET, Empty(), token=token)


@router.patch(
    "",
    response_model=ProfilePublic,
    summary="Change my profile (fields sent and not null; '' clears)",
    responses=errors(403),
)
async def update_profile(body: ProfileUpdate, call: Call, token: Token) -> ProfilePublic:
    return await call(PROFILE_UPDATE, body, token=token)


@router.put(
    "/avatar",
    response_model=ProfilePublic,
    summary="Replace my avatar: the raw PNG, JPEG or WebP bytes as the body, at most 2 MB",
    openapi_extra=binary_body(
        *IMAGE_TYPES,
        "application/octet-stream",
        description="The image file itself (the service decides its type by content, not by Content-Type).",
    ),
    responses=errors(403, 413, 415),
)
async def put_avatar(request: Request, call: Call, token: Token) -> ProfilePublic:
    data = await read_capped(request, AVATAR_MAX_BYTES)
    if not data:
        raise Invalid("Send the image bytes as the request body.", [{"field": "avatar", "message": "empty"}])
    return await call(AVATAR_SET, {"data": base64.b64encode(data)}, token=token)


@router.get(
    "/avatar",
    summary="My avatar, 256 px",
    response_class=Response,
    responses={**binary_response(*IMAGE_TYPES, description="The avatar image."), **errors(404)},
)
async def get_avatar(call: Call, token: Token) -> Response:
    image: AvatarImage = await call(AVATAR_GET, Empty(), token=token)
    return Response(
        content=image.data,
        media_type=image.content_type,
        headers={
            "Cache-Control": "private, no-cache",
            "Last-Modified": image.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )


@router.delete("/avatar", response_model=ProfilePublic, summary="Remove my avatar", responses=errors(403))
async def delete_avatar(call: Call, token: Token) -> ProfilePublic:
    return await call(AVATAR_DELETE, Empty(), token=token)
