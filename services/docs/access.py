"""Who may do what with a document, decided in SQL — twice.

1. Every statement a handler runs names the caller's access itself (`readable`, `role_of`, `shared_pairs`):
   the owner, or a share of the document — or of a category its owner filed it under — naming the caller or
   one of their groups (viewer: read, download, preview, search; editor: also edit and re-process).
   What the shares reach is materialised in `document_access` (migration 0014: triggers on the shares and the
   filings keep it, in the writing transaction), so both read one indexed table.
2. PostgreSQL row-level security on every documents table (migrations 0011, 0014) keys the same rule on who acts,
   set at the start of each transaction by `acting` (or `as_system` for the service's own background paths,
   `as_admin` for an administrator's audited override). A statement run without it sees no row and may write
   none; the service's role owns the tables, so they FORCE row-level security.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from typing import cast as cast_type
from uuid import UUID

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause, Subquery

from contracts import Forbidden, NotFound
from contracts.docs_api import AccessRole
from services.kit.db import Database, begin_with
from services.kit.security import Actor

from .tables import document_access, documents, shares

# The background paths allowed past row-level security, each by name: the pipeline's events, task retention,
# share links (a visitor has no account), the user directory and deleted groups (events), live progress
# (whose documents), a deleted user's data, reconciling after a restore (infra/backup.py), and the counts of
# the admin's system status and the metrics (documents per status, never their content).
SystemReason = Literal[
    "pipeline", "retention", "share_link", "directory", "progress", "forget_user", "restore", "status"
]

NEED_RANK: dict[AccessRole, int] = {"viewer": 1, "editor": 2, "owner": 3}


@dataclass(frozen=True)
class Caller:
    """The verified user and the groups they belong to now (from the permissions service)."""

    actor: Actor
    groups: tuple[UUID, ...] = ()

    @property
    def user_id(self) -> UUID:
        return self.actor.user_id

    @property
    def principals(self) -> list[UUID]:
        """Whom a share may name to reach this caller."""
        return [self.actor.user_id, *self.groups]

    @property
    def is_admin(self) -> bool:
        return self.actor.is_admin


# ---- who acts, per transaction (row-level security reads these) ----------------------------------------

# Four transaction-local settings in one statement, the first of every transaction: they end with it, so
# a pooled connection never carries one user's identity into another's request.
_WHO_ACTS = (
    "SELECT set_config('atrium.user_id', $1, true), set_config('atrium.principals', $2, true),"
    " set_config('atrium.admin', $3, true), set_config('atrium.system', $4, true)"
)


async def _set_who_acts(
    s: AsyncSession,
    *,
    user_id: UUID | None = None,
    principals: Sequence[UUID] = (),
    admin: bool = False,
    system: str = "",
) -> None:
    await begin_with(
        s,
        _WHO_ACTS,
        str(user_id) if user_id else "",
        "{" + ",".join(str(p) for p in principals) + "}" if principals else "",
        "on" if admin else "",
        system,
    )


@asynccontextmanager
async def acting(db: Database, caller: Caller, *, write: bool = False) -> AsyncIterator[AsyncSession]:
    """A session (a transaction when `write`) in which the database knows who acts (a list also sets how it is
    planned: `list_sources`)."""
    async with db.transaction() if write else db.session() as s:
        await _set_who_acts(s, user_id=caller.user_id, principals=caller.principals)
        yield s


@asynccontextmanager
async def as_admin(db: Database, caller: Caller) -> AsyncIterator[AsyncSession]:
    """A transaction in which an administrator may act on others' documents (delete, manage access): the
    handler that opens it records an audit entry for what it did."""
    if not caller.is_admin:
        raise Forbidden("This needs an administrator.")
    async with db.transaction() as s:
        await _set_who_acts(s, user_id=caller.user_id, principals=caller.principals, admin=True)
        yield s


@asynccontextmanager
async def as_system(db: Database, reason: SystemReason, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """The service's own background work, past row-level security, named by `reason`."""
    async with db.transaction() if write else db.session() as s:
        await _set_who_acts(s, system=reason)
        yield s


# ---- the same rule, written into each statement -------------------------------------------------------


def _principals(caller: Caller) -> ColumnElement[Any]:
    kind = ARRAY(PgUUID(as_uuid=True))
    if isinstance(caller, _AnyCaller):  # bound per execution
        return cast(caller.principals, kind)
    return cast(literal(caller.principals, kind), kind)


def shared_pairs(caller: Caller, *, roles: tuple[str, ...] = ("viewer", "editor")) -> Select[Any]:
    """(document_id, owner_id, role) of every share reaching the caller: of a document, or of a category
    its owner filed documents under (each filed document once per such share), as `document_access` holds
    them (kept in step with the shares and filings by triggers, migration 0014)."""
    a = document_access.c
    role = [a.role.in_(roles)] if len(roles) < 2 else []
    return select(a.document_id, a.owner_id, a.role).where(a.grantee_id == any_(_principals(caller)), *role)


ROLE_RANK: dict[AccessRole, int] = {"viewer": 1, "editor": 2, "owner": 3}


def reached_by(caller: Caller) -> Select[Any]:
    """The ids of others' documents a share reaches the caller with (a document reached twice is twice)."""
    a = document_access.c
    return select(a.document_id).where(
        a.grantee_id == any_(_principals(caller)), a.owner_id != caller.user_id
    )


@dataclass(frozen=True)
class Branch:
    """Every document of others shared with the caller — by a share of the document, or of a category its
    owner filed it under — as `document_access` holds them, read by a list as one branch: the grantee index
    gives their ids and sort keys (migration 0015; an index-only range per principal), sorted in list order,
    and documents are probed in that order until a page matches (`in_order`). That reads in proportion to
    the page (or, with selective filters, to the documents shared with the caller: thousands, 5,227 at
    1,000,000 documents, bench/bench_sharing.py), never to their owners' libraries: walking a sharing
    owner's documents and testing each filing (a branch per shared category, before) read most of a large
    owner's documents when a small category was shared or the filters were selective (1.35 s median)."""

    caller: Caller
    role: AccessRole = "viewer"  # the least a row has; `rank` gives each row's own

    def rank(self, doc_id: ColumnElement[Any]) -> ColumnElement[Any]:
        """ROLE_RANK of the caller's best role on the row `doc_id` (editor over viewer when several shares
        reach it): one probe of the (document, grantee) index, for the page's rows only."""
        a = document_access.c
        ranked = case((a.role == "editor", literal(ROLE_RANK["editor"])), else_=literal(ROLE_RANK["viewer"]))
        return (
            select(func.max(ranked))
            .where(a.document_id == doc_id, a.grantee_id == any_(_principals(self.caller)))
            .scalar_subquery()
        )

    def condition(self, doc: FromClause = documents) -> ColumnElement[bool]:
        return doc.c.id.in_(reached_by(self.caller))

    def ids(self) -> Select[Any]:
        """The ids of every document of others shared with the caller, each once (the grantee index alone)."""
        return reached_by(self.caller).distinct()

    def per_status(self) -> Select[Any]:
        """(status, n): the documents of others shared with the caller per status, each once, from the status
        copied into `document_access` (the grantee index alone)."""
        a = document_access.c
        return (
            select(a.status, func.count(a.document_id.distinct()).label("n"))
            .where(a.grantee_id == any_(_principals(self.caller)), a.owner_id != self.caller.user_id)
            .group_by(a.status)
        )

    def in_order(self, key: str, *, descending: bool) -> Subquery:
        """(id, sort_key) of every document of others shared with the caller, each once, in list order by
        `key` (a sort key column of `document_access`, migration 0015) and id: read from the grantee index
        alone (an index-only range per principal) and sorted, before any document is probed."""
        a = document_access.c
        k = a[key]
        order = (k.desc(), a.document_id.desc()) if descending else (k.asc(), a.document_id.asc())
        return (
            select(a.document_id.label("id"), k.label("sort_key"))
            .where(a.grantee_id == any_(_principals(self.caller)), a.owner_id != self.caller.user_id)
            .ext(distinct_on(k, a.document_id))  # one sort gives both the order and each document once
            .order_by(*order)
            .subquery("shared_in_order")
        )


async def shared_sources(s: AsyncSession, caller: Caller) -> Branch | None:
    """What of others is shared with the caller now, as a list reads it (one `Branch`), or None when nothing
    is. Group membership is the caller's now and `document_access` is kept by triggers in the writing
    transaction, so a revoke, an unfiling or a group removal holds at once."""
    if not (await s.execute(_ANYTHING_SHARED, acting_params(caller))).scalar():
        return None
    return Branch(caller)


def shared_with(
    caller: Caller, doc: FromClause = documents, *, roles: tuple[str, ...] = ("viewer", "editor")
) -> ColumnElement[bool]:
    """The document is shared with the caller (and not theirs), with one of `roles`."""
    pairs = shared_pairs(caller, roles=roles).subquery("shared_pairs")
    return and_(
        doc.c.owner_id != caller.user_id,
        tuple_(doc.c.id, doc.c.owner_id).in_(select(pairs.c.document_id, pairs.c.owner_id)),
    )


def readable(caller: Caller, doc: FromClause = documents) -> ColumnElement[bool]:
    return or_(doc.c.owner_id == caller.user_id, shared_with(caller, doc))


def may(caller: Caller, need: AccessRole, doc: FromClause = documents) -> ColumnElement[bool]:
    """The caller's access to the row's document is at least `need`."""
    mine = doc.c.owner_id == caller.user_id
    if need == "owner":
        return mine
    return or_(
        mine, shared_with(caller, doc, roles=("editor",) if need == "editor" else ("viewer", "editor"))
    )


def role_of(caller: Caller, doc: FromClause = documents) -> ColumnElement[Any]:
    """'owner', 'editor', 'viewer' or NULL: the caller's access to the row's document."""
    pairs = shared_pairs(caller).subquery("role_pairs")
    shared_role = (
        select(
            case(
                (func.bool_or(pairs.c.role == "editor"), literal("editor")),
                (func.count() > 0, literal("viewer")),
                else_=None,
            )
        )
        .where(pairs.c.document_id == doc.c.id, pairs.c.owner_id == doc.c.owner_id)
        .scalar_subquery()
    )
    return case((doc.c.owner_id == caller.user_id, literal("owner", String)), else_=shared_role)


def sharing_owners(caller: Caller) -> Select[Any]:
    """The owners who share anything with the caller (whose progress may concern them)."""
    s = shares.c
    return (
        select(s.owner_id)
        .where(s.grantee_id == any_(_principals(caller)), s.owner_id != caller.user_id)
        .distinct()
    )


class _AnyCaller:
    """Stands for the caller in a statement built once and run for anyone: who acts is bound per execution
    (`acting_params`), so the statement is not built again for each request — building `document_row`'s
    was half the CPU of opening a document."""

    user_id: Any = bindparam("acting_user", type_=PgUUID(as_uuid=True))
    principals: Any = bindparam("acting_principals", type_=ARRAY(PgUUID(as_uuid=True)))


ANY_CALLER = cast_type(Caller, _AnyCaller())


def acting_params(caller: Caller) -> dict[str, Any]:
    """The values of a statement built with `ANY_CALLER`, for this caller."""
    return {"acting_user": caller.user_id, "acting_principals": caller.principals}


# Whether anything of others is shared with the caller (`shared_sources`), built once.
_ANYTHING_SHARED = select(reached_by(ANY_CALLER).exists())

# A list of a caller who owns fewer documents than this, with nothing of others shared with them in it, is
# planned the way PostgreSQL plans any statement (a generic plan once it has run five times on a connection)
# instead of for its values every time: in a 200-user load run, planning was most of PostgreSQL's work for
# a list (2.7 ms planning, 0.8 running) and a search (6 of 13 ms; pg_stat_statements), and so few documents
# are read fast whatever the plan. A larger library, or documents shared with the caller, keeps plans made
# for the values: no one plan fits an owner of 10 and one of 100,000, or a rare and a common word.
PLANNED_FOR_VALUES_FROM = 2_000


def _list_sources() -> Select[Any]:
    shared = reached_by(ANY_CALLER).exists()
    owned = (
        select(literal(1))
        .where(documents.c.owner_id == ANY_CALLER.user_id)
        .limit(bindparam("many", type_=Integer))
        .subquery("owned")
    )
    many = select(func.count()).select_from(owned).scalar_subquery() >= bindparam("many", type_=Integer)
    custom = or_(and_(bindparam("shared_too", type_=Boolean), shared), many)
    mode = case((custom, literal("force_custom_plan")), else_=literal("auto"))
    return select(shared.label("shared"), func.set_config("plan_cache_mode", mode, True))


_LIST_SOURCES = _list_sources()


async def list_sources(s: AsyncSession, caller: Caller, scope: str) -> Branch | None:
    """For a list: what of others is shared with the caller (`shared_sources`; asked for by scope `all` and
    `shared`), and, in the same statement, how the list is planned in this transaction
    (`PLANNED_FOR_VALUES_FROM`)."""
    shared_too = scope != "mine"
    params = {**acting_params(caller), "many": PLANNED_FOR_VALUES_FROM, "shared_too": shared_too}
    shared = (await s.execute(_LIST_SOURCES, params)).scalar()
    return Branch(caller) if shared_too and shared else None


def _document_row(lock: bool) -> Select[Any]:
    stmt = select(documents, role_of(ANY_CALLER).label("access_role")).where(
        documents.c.id == bindparam("doc_id"), readable(ANY_CALLER)
    )
    return stmt.with_for_update(of=documents) if lock else stmt


_DOCUMENT_ROW = {lock: _document_row(lock) for lock in (False, True)}


async def read_document_row(s: AsyncSession, doc_id: UUID, caller: Caller, *, lock: bool = False) -> Any:
    """The document's row with the caller's role (`access_role`), if they may read it; else None."""
    return (await s.execute(_DOCUMENT_ROW[lock], {"doc_id": doc_id, **acting_params(caller)})).first()


def require(
    row: Any, need: AccessRole, doc_id: UUID, *, what: str = "do this"
) -> AccessRole:  # the row of `document_row`
    """The caller's role if it is enough for `need`: an unknown (or invisible) document is `NotFound`, a
    shared one the caller may not change enough is `Forbidden` with what to ask for."""
    if row is None or row.access_role is None:
        raise NotFound("There is no such document.", {"id": str(doc_id)})
    role: AccessRole = row.access_role
    if NEED_RANK[role] < NEED_RANK[need]:
        if need == "owner":
            raise Forbidden(f"Only the document's owner can {what}.", {"role": role})
        raise Forbidden(
            f"You can view this document but not {what}; ask its owner to make you an editor.",
            {"role": role},
        )
    return role
