"""Turning a message body into a model, and a pydantic error into the error envelope's details.

A leaf: the bus, the client, the gateway and the settings store all validate the same way.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts import Invalid

M = TypeVar("M", bound=BaseModel)


def validation_details(err: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors without the submitted values (they may be passwords)."""
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_model(model: type[M], body: bytes | str | None) -> M:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise Invalid("The message body is not valid JSON.", validation_details(err)) from None
        raise Invalid(
            f"The request does not match {model.__name__}: fix the listed fields.", validation_details(err)
        ) from None
