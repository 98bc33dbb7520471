"""The envelope every Rpc answers, as bytes: written by the kit's Rpc server, read by every caller.

`{"ok":true,"data":…,"error":null}` is exactly what `Envelope(ok=True, data=…).model_dump_json()` writes,
built around the reply model's own JSON instead of through a dict (tests/unit/test_envelope.py holds the
two equal). Because the kit writes it this way, a caller that forwards the reply as it is (the gateway's
pass-through routes) can cut the data out without parsing it: `reply_data`.
"""

from __future__ import annotations

from pydantic import BaseModel

from contracts import AtriumError, Envelope

OK_HEAD = b'{"ok":true,"data":'
OK_TAIL = b',"error":null}'


def ok_envelope(reply: BaseModel) -> bytes:
    return OK_HEAD + reply.model_dump_json().encode() + OK_TAIL


def error_envelope(err: AtriumError) -> bytes:
    return Envelope(ok=False, error=err.to_body()).model_dump_json().encode()


def reply_data(raw: bytes) -> bytes | None:
    """The data of a success envelope written by `ok_envelope`, as its JSON bytes; None for anything else
    (an error, or an envelope written otherwise: parse that one)."""
    if raw.startswith(OK_HEAD) and raw.endswith(OK_TAIL):
        return raw[len(OK_HEAD) : -len(OK_TAIL)]
    return None
