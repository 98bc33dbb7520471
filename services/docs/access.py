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
    ColumnElement,
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
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from contracts import Forbidden, NotFound
from contracts.docs_api import AccessRole
from services.kit.db import Database, begin_with
from services.kit.security import Actor

from .tables import document_access, document_categories, documents, shares

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
# A prepared statement switches to a generic plan after five runs, and no single plan fits both an owner
# with 10 and one with 100,000 documents, or a rare and a common word: a list is planned for its values
# (set in the same statement, saving the list a round trip).
_WHO_ACTS_PLANNED_FOR_ITS_VALUES = _WHO_ACTS + ", set_config('plan_cache_mode', 'force_custom_plan', true)"


async def _set_who_acts(
    s: AsyncSession,
    *,
    user_id: UUID | None = None,
    principals: Sequence[UUID] = (),
    admin: bool = False,
    system: str = "",
    custom_plans: bool = False,
) -> None:
    await begin_with(
        s,
        _WHO_ACTS_PLANNED_FOR_ITS_VALUES if custom_plans else _WHO_ACTS,
        str(user_id) if user_id else "",
        "{" + ",".join(str(p) for p in principals) + "}" if principals else "",
        "on" if admin else "",
        system,
    )


@asynccontextmanager
async def acting(
    db: Database, caller: Caller, *, write: bool = False, custom_plans: bool = False
) -> AsyncIterator[AsyncSession]:
    """A session (a transaction when `write`) in which the database knows who acts; `custom_plans`: each
    statement planned for its values (a list or search, see `_WHO_ACTS_PLANNED_FOR_ITS_VALUES`)."""
    async with db.transaction() if write else db.session() as s:
        await _set_who_acts(
            s, user_id=caller.user_id, principals=caller.principals, custom_plans=custom_plans
        )
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


@dataclass(frozen=True)
class Branch:
    """Documents of others shared with the caller with one role, as a list reads them: by id (document
    shares) or as an owner's documents filed under some of their categories (category shares)."""

    role: AccessRole
    document_ids: tuple[UUID, ...] = ()
    owner_id: UUID | None = None
    category_ids: tuple[UUID, ...] = ()
    # Of `document_ids` (shared with the caller as viewer), those shared with them as editor as well: one
    # branch for every document share (another branch is another documents reference to plan).
    editor_ids: tuple[UUID, ...] = ()

    def rank(self, doc_id: ColumnElement[Any]) -> ColumnElement[Any]:
        """ROLE_RANK of the caller's role on the branch's row `doc_id`."""
        if not self.editor_ids:
            return literal(ROLE_RANK[self.role])
        kind = ARRAY(PgUUID(as_uuid=True))
        editable = doc_id == any_(cast(literal(list(self.editor_ids), kind), kind))
        return case((editable, literal(ROLE_RANK["editor"])), else_=literal(ROLE_RANK[self.role]))

    def condition(
        self, doc: FromClause = documents, *, ordered: bool = True, filed_by_caller_in: Sequence[UUID] = ()
    ) -> ColumnElement[bool]:
        """`ordered`: for a page read in index order (a list); else for reading them all (counts), or — given
        `filed_by_caller_in`, the caller's own categories a list is filtered by — only those the caller
        filed there too (the list's category filter still applies; this only lets the filings be read first)."""
        if self.owner_id is None:
            # Unnested, a semi-join of primary-key probes (`id = ANY(...)` let the planner skip-scan a whole
            # (owner, key, id) index instead).
            kind = ARRAY(PgUUID(as_uuid=True))
            ids = select(func.unnest(cast(literal(list(self.document_ids), kind), kind)).column_valued("id"))
            return doc.c.id.in_(ids)
        dc = document_categories.c
        if not ordered:  # all of them: the filed documents, found by category
            filed = select(dc.document_id).where(
                dc.category_id.in_(self.category_ids), dc.owner_id == self.owner_id
            )
            if filed_by_caller_in:
                # Both filings read from the (category, document) index and joined there: the caller files
                # few of others' documents, and only those are then read.
                mine = document_categories.alias("caller_filed")
                filed = filed.join_from(
                    document_categories, mine, mine.c.document_id == dc.document_id
                ).where(mine.c.category_id.in_(list(filed_by_caller_in)))
            return and_(doc.c.owner_id == self.owner_id, doc.c.id.in_(filed))
        # Read as the owner's documents in their index order (of the list's sort key), each kept when filed
        # under a shared category: one probe of its filings, so a page reads about a page's worth of rows over
        # the share's share of the owner's documents. As a plain IN the planner turned it into a join reading
        # every filed document and sorting them (4,887 of them: 0.5-1.5 s, bench/bench_sharing.py), having
        # underestimated how many there are; OFFSET 0 keeps the subquery a per-row probe.
        filed = (
            select(literal(1))
            .where(
                dc.document_id == doc.c.id,
                dc.category_id.in_(self.category_ids),
                dc.owner_id == self.owner_id,
            )
            .offset(0)
        )
        return and_(doc.c.owner_id == self.owner_id, filed.exists())


@dataclass(frozen=True)
class SharedSources:
    """What is shared with the caller now, as the shares say it — not the documents they cover, which a
    category's share can make thousands: a list reads each source as its own branch, in index order, and
    so touches a page's worth of each (`shared_sources` reads them in the list's transaction)."""

    branches: tuple[Branch, ...] = ()


NOTHING_SHARED = SharedSources()


async def shared_sources(s: AsyncSession, caller: Caller) -> SharedSources:
    """The shares naming the caller or a group of theirs, grouped into list branches: every document share
    (with the best role when a document is shared twice), category shares by owner and role."""
    sh = shares.c
    rows = (
        await s.execute(
            select(sh.document_id, sh.category_id, sh.owner_id, sh.role).where(
                sh.grantee_id == any_(_principals(caller)), sh.owner_id != caller.user_id
            )
        )
    ).all()
    documents_: dict[UUID, AccessRole] = {}
    categories_: dict[tuple[UUID, AccessRole], set[UUID]] = {}
    for r in rows:
        if r.document_id is not None:
            before = documents_.get(r.document_id)
            if before is None or ROLE_RANK[r.role] > ROLE_RANK[before]:
                documents_[r.document_id] = r.role
        else:
            categories_.setdefault((r.owner_id, r.role), set()).add(r.category_id)
    editors = tuple(d for d, rl in sorted(documents_.items()) if rl == "editor")
    branches = []
    if documents_:
        everyone_edits = len(editors) == len(documents_)
        branches.append(
            Branch(
                "editor" if everyone_edits else "viewer",
                document_ids=tuple(sorted(documents_)),
                editor_ids=() if everyone_edits else editors,
            )
        )
    branches += [
        Branch(role, owner_id=owner, category_ids=tuple(sorted(cats)))
        for (owner, role), cats in sorted(categories_.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    ]
    return SharedSources(tuple(branches))


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
