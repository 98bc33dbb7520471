"""What a client sends can always be stored and queried: the fuzz found 500s where it could not.

PostgreSQL refuses the NUL character in text and numbers beyond a column's range (an OFFSET past int64, an
amount over NUMERIC(18, 2)). So every free-text string of every request model a client can send (nested
models and lists included) is `Text` or `UrlText` or otherwise constrained (an enum, a format, a pattern that
refuses NUL), and every number has a lower and an upper bound. A new bare `str` or unbounded `int` fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from contracts import REGISTRY
from contracts.base import Contract

# What a client can send: the requests of every Rpc but those only services may call.
REQUESTS = sorted(
    {rpc.request for rpc in REGISTRY.rpcs.values() if rpc.access != "service"}, key=lambda m: m.__name__
)


def unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Paths of string schemas that would take a NUL character and of numbers without both bounds."""
    if "$ref" in schema:
        return unbounded(defs[schema["$ref"].rsplit("/", 1)[1]], defs, path)
    found: list[str] = []
    options = schema.get("anyOf", [])
    decimal = any(o.get("type") == "number" for o in options)  # a Decimal: number or its string form
    for option in options:
        if not (decimal and option.get("type") == "string"):
            found += unbounded(option, defs, path)
    if schema.get("type") == "object":
        for name, prop in schema.get("properties", {}).items():
            found += unbounded(prop, defs, f"{path}.{name}")
    if schema.get("type") == "array" and "items" in schema:
        found += unbounded(schema["items"], defs, f"{path}[]")
    if schema.get("type") == "string" and not {"enum", "const", "format"} & schema.keys():
        pattern = schema.get("pattern")
        if pattern is None or re.search(pattern, "a\x00b"):
            found.append(f"{path}: text that takes NUL")
    if schema.get("type") in ("integer", "number"):
        if not (
            {"minimum", "exclusiveMinimum"} & schema.keys()
            and {"maximum", "exclusiveMaximum"} & schema.keys()
        ):
            found.append(f"{path}: a number without both bounds")
    return found


@pytest.mark.parametrize("model", REQUESTS, ids=lambda m: m.__name__)
def test_request_fields_are_bounded(model: type[Contract]) -> None:
    schema = model.model_json_schema()
    assert unbounded(schema, schema.get("$defs", {}), model.__name__) == []


def test_the_check_sees_a_bare_str_and_an_unbounded_int() -> None:
    class Careless(Contract):
        name: str
        offset: int = 0

    schema = Careless.model_json_schema()
    assert len(unbounded(schema, {}, "Careless")) == 2
