"""What the routes declare beyond the contracts: query strings with comma lists, binary bodies and answers.

A route takes its query as the contract's model (`Annotated[ListDocumentsQuery, Query()]`), so the OpenAPI
lists every filter, sort and cursor, and FastAPI refuses an unknown parameter as the contract would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_origin

from fastapi import FastAPI
from pydantic import BaseModel, model_validator

BINARY = {"type": "string", "format": "binary"}
# Models a route refers to by hand (`component`): FastAPI does not know them, `install` adds them.
_COMPONENTS: dict[str, type[BaseModel]] = {}


def component(model: type[BaseModel]) -> dict[str, str]:
    """A `$ref` to `model` in the document's components, for a schema FastAPI cannot place itself (a
    non-JSON answer's items, an error body on a route whose successful answer is not JSON)."""
    _COMPONENTS[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


class CommaLists(BaseModel):
    """A query model whose list fields repeat (`?status=a&status=b`) or take commas (`?status=a,b`)."""

    @model_validator(mode="before")
    @classmethod
    def _split_commas(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lists = {name for name, f in cls.model_fields.items() if get_origin(f.annotation) is list}
        return {
            key: [part.strip() for v in value for part in str(v).split(",") if part.strip()]
            if key in lists and isinstance(value, list)
            else value
            for key, value in data.items()
        }


def binary_body(*media_types: str, description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its raw body itself (no model FastAPI could describe)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media: {"schema": BINARY} for media in media_types},
        }
    }


def binary_response(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses` entry for a 200 that is a file (PDF, PNG, CSV…), not JSON."""
    return {
        200: {"description": description, "content": {media: {"schema": BINARY} for media in media_types}}
    }


def event_stream(model: type[BaseModel], *, event: str, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses` entry for a 200 `text/event-stream` whose `event: <event>` carry `model` as JSON data.

    Described the way FastAPI describes its own SSE routes (OpenAPI 3.2's `itemSchema`), with the data's
    schema named in the components so a generated client has its type.
    """
    item = {
        "type": "object",
        "properties": {
            "event": {"type": "string", "const": event},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": component(model),
            },
        },
        "required": ["event", "data"],
    }
    return {200: {"description": description, "content": {"text/event-stream": {"itemSchema": item}}}}


def install(app: FastAPI) -> None:
    """Serve FastAPI's OpenAPI document with the models of `component` added to its components."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in _COMPONENTS.values():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas.setdefault(model.__name__, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
