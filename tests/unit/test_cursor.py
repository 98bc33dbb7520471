"""The kit's keyset cursor codec (services/kit/cursor.py)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts import Invalid
from services.kit.cursor import decode_cursor, encode_cursor

ROW = uuid.UUID("6f1c0c56-7a0e-4d55-9d6f-0d1e2b3c4d5e")
# Fixed, so parametrize ids are the same in every xdist worker (collection must match).
AT = datetime(2026, 11, 30, 11, 30, tzinfo=UTC)


def test_round_trip_of_every_type() -> None:
    at = datetime(2024, 5, 17, 8, 30, 12, 345678, tzinfo=UTC)
    values = (at, date(2023, 1, 31), Decimal("304277.24"), 12, 0.25, "Ünïcode & spaces", None, ROW)
    cursor = encode_cursor(values, bound_to=["uploaded_at", "desc", "invoice"])
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    decoded = decode_cursor(
        cursor,
        (datetime, date, Decimal, int, float, str, datetime, uuid.UUID),
        bound_to=["uploaded_at", "desc", "invoice"],
    )
    assert decoded == values
    assert decoded[0].tzinfo is not None  # type: ignore[union-attr]


def test_the_format_is_what_the_documents_lists_already_hand_out() -> None:
    """A JSON list, query first, URL-safe base64 without padding: cursors issued before stay valid."""
    old = (
        base64.urlsafe_b64encode(json.dumps(["title", "asc", "", "abc", str(ROW)]).encode())
        .decode()
        .rstrip("=")
    )
    assert decode_cursor(old, (str, uuid.UUID), bound_to=["title", "asc", ""]) == ("abc", ROW)
    padded = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00+00:00", str(ROW)]).encode()).decode()
    assert decode_cursor(padded, (datetime, uuid.UUID))[1] == ROW


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"{not json").decode(),
        encode_cursor(["x", ROW]),  # a string where a date belongs
        encode_cursor([AT]),  # too short
        encode_cursor([AT, ROW, 3]),  # too long
        encode_cursor([AT, "not-a-uuid"]),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([True, str(ROW)]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([["nested"], str(ROW)]).encode()).decode(),
    ],
)
def test_a_malformed_cursor_is_invalid_not_a_crash(cursor: str) -> None:
    with pytest.raises(Invalid) as info:
        decode_cursor(cursor, (datetime, uuid.UUID))
    assert info.value.details == [{"field": "cursor", "message": "invalid"}]
    assert "start again without it" in info.value.message


def test_a_cursor_of_another_query_is_refused() -> None:
    cursor = encode_cursor([5, ROW], bound_to=["size", "asc", ""])
    assert decode_cursor(cursor, (int, uuid.UUID), bound_to=["size", "asc", ""]) == (5, ROW)
    for other in (["size", "desc", ""], ["size", "asc", "q"], ["title", "asc", ""], []):
        with pytest.raises(Invalid):
            decode_cursor(cursor, (int, uuid.UUID), bound_to=other)


def test_an_integer_position_must_be_an_integer() -> None:
    with pytest.raises(Invalid):
        decode_cursor(encode_cursor([1.5, ROW]), (int, uuid.UUID))
