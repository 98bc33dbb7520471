"""What the documents service learns from other services' events: the accounts sharing needs (email for an
exact lookup, name, whether active) from the auth service, and deleted accounts and groups, whose shares go."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.auth import UserChanged, UserRegistered
from contracts.permissions import PermissionsChanged
from services.kit.bus import Ctx

from ..access import as_system
from ..tables import directory, shares
from .common import DocsDeps


async def on_user_registered(ev: UserRegistered, ctx: Ctx, deps: DocsDeps) -> None:
    d = directory.c
    async with as_system(deps.db, "directory") as s:
        # An address belongs to one account: a deleted account's row whose event is still to come goes.
        await s.execute(
            delete(directory).where(func.lower(d.email) == ev.email.lower(), d.user_id != ev.user_id)
        )
        await s.execute(
            pg_insert(directory)
            .values(user_id=ev.user_id, email=ev.email, name=ev.full_name, active=True)
            .on_conflict_do_update(
                index_elements=[d.user_id],
                set_={"email": ev.email, "name": ev.full_name, "updated_at": func.now()},
            )
        )


async def on_user_changed(ev: UserChanged, ctx: Ctx, deps: DocsDeps) -> None:
    d = directory.c
    values: dict[str, object] = {"active": ev.is_active, "updated_at": func.now()}
    if ev.email is not None:
        values["email"] = ev.email
    async with as_system(deps.db, "directory") as s:
        if ev.email is not None:
            await s.execute(
                delete(directory).where(func.lower(d.email) == ev.email.lower(), d.user_id != ev.user_id)
            )
        await s.execute(update(directory).where(d.user_id == ev.user_id).values(**values))


async def forget_account(s: AsyncSession, user_id: UUID) -> None:
    """The account is gone: so are its directory entry and the shares that named it (what it shared went with
    its documents and categories; housekeeping.forget_user, in its transaction)."""
    await s.execute(delete(directory).where(directory.c.user_id == user_id))
    await s.execute(delete(shares).where(shares.c.grantee_type == "user", shares.c.grantee_id == user_id))


async def on_permissions_changed(ev: PermissionsChanged, ctx: Ctx, deps: DocsDeps) -> None:
    """A deleted group's shares go (its members lost them already: their groups are looked up afresh)."""
    if ev.change != "group_deleted" or ev.group_id is None:
        return
    async with as_system(deps.db, "directory") as s:
        await s.execute(
            delete(shares).where(shares.c.grantee_type == "group", shares.c.grantee_id == ev.group_id)
        )
