"""Keyset cursors: the position after the last row of a page, as an opaque URL-safe string.

    next_cursor = encode_cursor([last.created_at, last.id], bound_to=[sort, order, q])
    created_at, row_id = decode_cursor(cmd.cursor, (datetime, UUID), bound_to=[sort, order, q])

A cursor is the URL-safe base64 (no padding) of a JSON list: the `bound_to` strings, then the values.
`bound_to` ties it to the query it came from: a cursor of another sort or search is refused
(`Invalid`, field `cursor`), never silently applied.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from contracts import Invalid

CursorValue = str | int | float | Decimal | datetime | date | UUID | None
CursorType = type[str] | type[int] | type[float] | type[Decimal] | type[datetime] | type[date] | type[UUID]


def _plain(value: CursorValue) -> str | int | float | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def _typed(value: object, kind: CursorType) -> CursorValue:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("not a scalar")
    if kind is int:
        if not isinstance(value, int):
            raise ValueError("not an integer")
        return value
    if kind is float:
        return float(value)
    if kind is Decimal:
        return Decimal(str(value))
    if kind is str:
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"not a {kind.__name__}")
    if kind is UUID:
        return UUID(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    return date.fromisoformat(value)


def encode_cursor(values: Sequence[CursorValue], *, bound_to: Sequence[str] = ()) -> str:
    raw = json.dumps([*bound_to, *(_plain(v) for v in values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invalid_cursor() -> Invalid:
    return Invalid(
        "The cursor is not valid for this query; start again without it.",
        [{"field": "cursor", "message": "invalid"}],
    )


def decode_cursor(
    cursor: str, types: Sequence[CursorType], *, bound_to: Sequence[str] = ()
) -> tuple[CursorValue, ...]:
    """The values `encode_cursor` stored, each converted to its type in `types`; `Invalid` if the cursor
    is malformed or belongs to another query."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != len(bound_to) + len(types):
            raise ValueError("wrong length")
        if parts[: len(bound_to)] != list(bound_to):
            raise ValueError("a cursor of another query")
        return tuple(_typed(v, t) for v, t in zip(parts[len(bound_to) :], types, strict=True))
    except (ValueError, TypeError, ArithmeticError, binascii.Error, UnicodeDecodeError):
        raise invalid_cursor() from None
