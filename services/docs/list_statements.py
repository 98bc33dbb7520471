"""The list statement built once per shape and run with each request's values (a cache in front of
`search.list_statement`, which stays the one definition of what a list reads).

Building the statement in SQLAlchemy (subqueries' column collections, the cache key over the whole tree)
was about half of a list's CPU in the documents service, on every request, although a page's statement
differs between requests only in its values. So per *shape* — everything that changes the SQL text: scope,
sort, order, page size, which filters are present, whether anything is shared with the caller — the
statement is built once, from made-up values, and each request runs that same statement object (its
SQLAlchemy cache key memoised, its compiled form cached) with its own values bound by name.

Which bound parameter carries which request value is found, not assumed: the shape is built twice, from
two different sets of made-up values, and compiled; every parameter whose value differs between the two
must be one of the made-up values (or the search text, stripped) of the same field in both, and is then
bound from the request; every parameter equal in both is a constant of the shape. A shape where a value
is transformed on its way in (the sender's prefix pattern, a cursor's decoded position) fails that check
and is built per request as before, as is any shape whose two builds differ in their SQL. The made-up
values are never a caller's, so nothing of one request can reach another's statement.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect

from contracts.docs_api import ListDocuments
from services.kit.security import Actor

from .access import Branch, Caller
from .handlers import search

MAX_SHAPES = 256  # shapes kept (least recently used dropped); a busy instance sees a few dozen

# The fields of a list whose values are bound per request (each a made-up value in the shapes' builds);
# any other field of ListDocuments is part of the shape by value.
_LIST_FIELDS = ("status", "document_type", "category_any", "category_all")
_VALUE_FIELDS = ("date_from", "date_to", "uploaded_from", "uploaded_to")
# Part of the shape by presence, built per request when present (their values are transformed on the way).
_PER_REQUEST_FIELDS = ("sender", "cursor")


@dataclass(frozen=True)
class _Shape:
    """A statement built from made-up values, and where each request's values go (parameter name → the
    request's value of that slot)."""

    statement: Select[Any] | None  # None: this shape is built per request
    slots: tuple[tuple[str, str, int], ...] = ()  # (parameter name, slot kind, index)


class ListStatements:
    """`statement(cmd, caller, shared)` gives the statement of a page and the values to run it with."""

    def __init__(self, dialect: Dialect, max_shapes: int = MAX_SHAPES):
        self.dialect = dialect
        self.max_shapes = max_shapes
        self._shapes: OrderedDict[tuple[Any, ...], _Shape] = OrderedDict()
        self.built = 0  # shapes built (tests and the curious)

    def statement(
        self, cmd: ListDocuments, caller: Caller, shared: Branch | None
    ) -> tuple[Select[Any], dict[str, Any]]:
        key = _shape_key(cmd, caller, shared)
        if key is None:
            return search.list_statement(cmd, caller, shared), {}
        shape = self._shapes.get(key)
        if shape is not None:
            self._shapes.move_to_end(key)
        else:
            shape = self._shapes[key] = self._build(cmd, caller, shared)
            while len(self._shapes) > self.max_shapes:
                self._shapes.popitem(last=False)
        if shape.statement is None:
            return search.list_statement(cmd, caller, shared), {}
        values = _slot_values(cmd, caller)
        return shape.statement, {name: values[kind][i] for name, kind, i in shape.slots}

    def _build(self, cmd: ListDocuments, caller: Caller, shared: Branch | None) -> _Shape:
        self.built += 1
        made_up = [_made_up(cmd, caller, shared) for _ in range(2)]
        built = [search.list_statement(c, who, branch) for c, who, branch, _ in made_up]
        compiled = [stmt.compile(dialect=self.dialect) for stmt in built]
        if str(compiled[0]) != str(compiled[1]) or compiled[0].params.keys() != compiled[1].params.keys():
            return _Shape(None)
        slots = []
        for name, first in compiled[0].params.items():
            second = compiled[1].params[name]
            if _same(first, second):
                continue  # a constant of the shape (a rank, the count cap, the page size + 1)
            where = [
                _slot_of(value, values) for value, (*_, values) in zip((first, second), made_up, strict=True)
            ]
            if where[0] is None or where[0] != where[1]:
                return _Shape(None)  # a value transformed on its way in: build per request
            slots.append((name, *where[0]))
        return _Shape(built[0], tuple(slots))


def _shape_key(cmd: ListDocuments, caller: Caller, shared: Branch | None) -> tuple[Any, ...] | None:
    if any(getattr(cmd, f) is not None for f in _PER_REQUEST_FIELDS):
        return None
    fields: list[Any] = []
    for name in type(cmd).model_fields:
        value = getattr(cmd, name)
        if name in _LIST_FIELDS:
            fields.append((name, len(dict.fromkeys(value))))
        elif name in _VALUE_FIELDS:
            fields.append((name, value is None))
        elif name == "q":
            fields.append((name, search.query_text(cmd) is None))
        else:
            try:
                hash(value)
            except TypeError:
                return None
            fields.append((name, value))
    return (
        tuple(fields),
        _tunables(),
        caller.is_admin,
        None if shared is None else (type(shared), shared.role),
    )


def _tunables() -> tuple[Any, ...]:
    """The list's constants (RANK_CANDIDATES, COUNT_CAP, …) as they are now: a test that changes one gets a
    statement built with it."""
    return tuple((k, v) for k, v in vars(search).items() if k.isupper() and isinstance(v, int | str))


def _slot_values(cmd: ListDocuments, caller: Caller) -> dict[str, list[Any]]:
    """The request's value of every slot: (kind, index) → value."""
    return {
        "user": [caller.user_id],
        "principals": [caller.principals],
        "list": [list(dict.fromkeys(getattr(cmd, f))) for f in _LIST_FIELDS],
        "item": [v for f in ("category_all",) for v in dict.fromkeys(getattr(cmd, f))],
        "value": [getattr(cmd, f) for f in _VALUE_FIELDS],
        "q": [search.query_text(cmd)],
    }


def _made_up(
    cmd: ListDocuments, caller: Caller, shared: Branch | None
) -> tuple[ListDocuments, Caller, Branch | None, dict[str, list[Any]]]:
    """A request of the same shape with made-up values (each distinct from every other), and its slots."""
    update: dict[str, Any] = {}
    for f in _LIST_FIELDS:
        n = len(dict.fromkeys(getattr(cmd, f)))
        update[f] = [f"made-up {f} {i} {uuid.uuid4().hex}" for i in range(n)]
    update["category_any"] = [uuid.uuid4() for _ in update["category_any"]]
    update["category_all"] = [uuid.uuid4() for _ in update["category_all"]]
    day = date(1900, 1, 1) + timedelta(days=uuid.uuid4().int % 30_000)
    moment = datetime(1900, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10**9)
    for i, f in enumerate(_VALUE_FIELDS):
        if getattr(cmd, f) is not None:
            update[f] = day + timedelta(days=i) if f.startswith("date") else moment + timedelta(seconds=i)
    if search.query_text(cmd) is not None:
        update["q"] = f"madeup{uuid.uuid4().hex}"
    made_up_cmd = cmd.model_copy(update=update)
    actor = caller.actor
    made_up_caller = Caller(
        Actor(user_id=uuid.uuid4(), role=actor.role, session_id="made-up", token="", kind=actor.kind),
        tuple(uuid.uuid4() for _ in caller.groups),
    )
    branch = None if shared is None else Branch(made_up_caller, shared.role)
    return made_up_cmd, made_up_caller, branch, _slot_values(made_up_cmd, made_up_caller)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _slot_of(value: Any, values: dict[str, list[Any]]) -> tuple[str, int] | None:
    """Which made-up value this parameter carries, if exactly one."""
    found = [
        (kind, i)
        for kind, slot in values.items()
        for i, v in enumerate(slot)
        if v is not None and _same(v, value)
    ]
    return found[0] if len(found) == 1 else None


LIST_STATEMENTS = ListStatements(asyncpg_dialect())
