"""`/api/v1/admin/*`: account administration and the audit trail (the auth service checks the admin role)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from contracts.auth import (
    ADMIN_AUDIT,
    ADMIN_DELETE_USER,
    ADMIN_END_SESSIONS,
    ADMIN_LIST_USERS,
    ADMIN_START_RESET,
    ADMIN_UPDATE_USER,
    Ack,
    AdminUpdateUser,
    AdminUserChanges,
    AdminUserRef,
    AuditPage,
    ListAudit,
    ListUsers,
    UserPage,
    UserPublic,
)

from ..bus import Call
from ..errors import errors
from ..transport import Token

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 403))


@router.get("/users", response_model=UserPage, summary="Search accounts")
async def list_users(query: Annotated[ListUsers, Query()], call: Call, token: Token) -> UserPage:
    return await call(ADMIN_LIST_USERS, query, token=token)


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    summary="Change an account's role or active flag",
    responses=errors(404, 409),
)
async def update_user(user_id: UUID, body: AdminUserChanges, call: Call, token: Token) -> UserPublic:
    return await call(
        ADMIN_UPDATE_USER,
        AdminUpdateUser(user_id=user_id, **body.model_dump(exclude_unset=True)),
        token=token,
    )


@router.delete(
    "/users/{user_id}",
    response_model=Ack,
    summary="Delete an account (every service forgets it)",
    responses=errors(404, 409),
)
async def delete_user(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_DELETE_USER, AdminUserRef(user_id=user_id), token=token)


@router.post(
    "/users/{user_id}/sessions/end",
    response_model=Ack,
    summary="End every session of an account",
    responses=errors(404),
)
async def end_sessions(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_END_SESSIONS, AdminUserRef(user_id=user_id), token=token)


@router.post(
    "/users/{user_id}/password-reset",
    response_model=Ack,
    summary="Mail the account a reset link",
    responses=errors(404),
)
async def start_reset(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_START_RESET, AdminUserRef(user_id=user_id), token=token)


@router.get("/audit", response_model=AuditPage, summary="The audit trail, newest first")
async def audit(query: Annotated[ListAudit, Query()], call: Call, token: Token) -> AuditPage:
    return await call(ADMIN_AUDIT, query, token=token)
