"""Calling an Rpc over NATS: used by the gateway, the CLI and service-to-service requests alike."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ValidationError

from contracts import AtriumError, Envelope, Header, Internal, Invalid, Timeout, Unavailable
from contracts.base import Rpc

from .logging import request_id_var
from .validation import validation_details

DEFAULT_TIMEOUT_S = 10.0


def build_request(desc: Rpc[Any, Any], payload: BaseModel | dict[str, Any] | None) -> BaseModel:
    if isinstance(payload, desc.request):
        return payload
    if isinstance(payload, BaseModel):  # another model with the fields (`Empty()` for a request of defaults)
        payload = payload.model_dump()
    try:
        return desc.request.model_validate(payload or {})
    except ValidationError as err:
        raise Invalid(
            f"The request does not match {desc.request.__name__}: fix the listed fields.",
            validation_details(err),
        ) from None


async def call(
    nc: nats.NATS,
    desc: Rpc[Any, Any],
    payload: BaseModel | dict[str, Any] | None = None,
    *,
    token: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """Send `payload` on `desc.subject`; return the reply model or raise the `AtriumError` the service sent."""
    body = build_request(desc, payload)
    now = time.time()
    hdrs = {
        Header.REQUEST_ID: request_id or request_id_var.get() or _new_id(),
        Header.DEADLINE: f"{now + timeout:.3f}",
        Header.SENT_AT: f"{now:.4f}",
        **(headers or {}),
    }
    if token:
        hdrs[Header.AUTHORIZATION] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    try:
        # Only the fields the caller set: the service parses the same model, so the rest get the same
        # defaults, and a PATCH can tell "set to null" from "not sent".
        msg = await nc.request(
            desc.subject, body.model_dump_json(exclude_unset=True).encode(), timeout=timeout, headers=hdrs
        )
    except NoRespondersError:
        raise Unavailable(
            f"The {desc.service} service is not running (no responder on {desc.subject}); "
            "start it or check its logs."
        ) from None
    except NatsTimeout:
        raise Timeout(f"The {desc.service} service did not answer within {timeout:g} s.") from None
    return parse_reply(desc, msg.data)


def parse_reply(desc: Rpc[Any, Any], data: bytes) -> Any:
    try:
        env = Envelope.model_validate_json(data)
    except ValidationError:
        raise Internal(f"{desc.subject} answered something that is not an envelope: {data[:200]!r}") from None
    if not env.ok:
        assert env.error is not None
        raise AtriumError.from_body(env.error)
    return desc.reply.model_validate(env.data)


def _new_id() -> str:
    return uuid.uuid4().hex


def dumps(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=2)
