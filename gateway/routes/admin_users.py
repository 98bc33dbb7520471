"""`/api/v1/admin/*`: account administration and the audit trail (the auth service checks the admin role)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
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
    Role,
    UserPage,
    UserPublic,
)

from ..bus import Call
from ..transport import Token

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=UserPage, summary="Search accounts")
async def list_users(
    call: Call,
    token: Token,
    search: str | None = None,
    role: Role | None = None,
    state: Literal["active", "inactive"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UserPage:
    return await call(
        ADMIN_LIST_USERS,
        ListUsers(search=search, role=role, state=state, limit=limit, offset=offset),
        token=token,
    )


@router.patch(
    "/users/{user_id}", response_model=UserPublic, summary="Change an account's role or active flag"
)
async def update_user(user_id: UUID, body: AdminUserChanges, call: Call, token: Token) -> UserPublic:
    return await call(
        ADMIN_UPDATE_USER,
        AdminUpdateUser(user_id=user_id, **body.model_dump(exclude_unset=True)),
        token=token,
    )


@router.delete("/users/{user_id}", response_model=Ack, summary="Delete an account (every service forgets it)")
async def delete_user(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_DELETE_USER, AdminUserRef(user_id=user_id), token=token)


@router.post("/users/{user_id}/sessions/end", response_model=Ack, summary="End every session of an account")
async def end_sessions(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_END_SESSIONS, AdminUserRef(user_id=user_id), token=token)


@router.post("/users/{user_id}/password-reset", response_model=Ack, summary="Mail the account a reset link")
async def start_reset(user_id: UUID, call: Call, token: Token) -> Ack:
    return await call(ADMIN_START_RESET, AdminUserRef(user_id=user_id), token=token)


@router.get("/audit", response_model=AuditPage, summary="The audit trail, newest first")
async def audit(
    call: Call,
    token: Token,
    action: str | None = None,
    actor_id: UUID | None = None,
    target_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    return await call(
        ADMIN_AUDIT,
        ListAudit(
            action=action,
            actor_id=actor_id,
            target_id=target_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        ),
        token=token,
    )
