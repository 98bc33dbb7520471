"""The bus described from `contracts.REGISTRY`: a subject table and an AsyncAPI 3.0 document."""

from __future__ import annotations

from typing import Any

from contracts import REGISTRY, Envelope


def subject_table() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for subject, rpc in sorted(REGISTRY.rpcs.items()):
        rows.append(
            {
                "kind": "rpc",
                "subject": subject,
                "request": rpc.request.__name__,
                "reply": rpc.reply.__name__,
                "access": rpc.access,
                "service": rpc.service,
                "summary": rpc.summary,
            }
        )
    for subject, ev in sorted(REGISTRY.events.items()):
        rows.append(
            {
                "kind": "event",
                "subject": subject,
                "event": ev.model.__name__,
                "stream": ev.stream,
                "summary": ev.summary,
            }
        )
    for _, pr in sorted(REGISTRY.progress.items()):
        rows.append(
            {
                "kind": "progress",
                "subject": pr.wildcard(),
                "event": pr.model.__name__,
                "stream": "core NATS",
                "summary": pr.summary,
            }
        )
    return rows


def _schema(model: type, schemas: dict[str, Any]) -> dict[str, str]:
    js = model.model_json_schema(ref_template="#/components/schemas/{model}")  # type: ignore[attr-defined]
    for name, d in js.pop("$defs", {}).items():
        schemas.setdefault(name, d)
    schemas[model.__name__] = js
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    _schema(Envelope, schemas)

    def message(model: type) -> dict[str, str]:
        messages.setdefault(
            model.__name__,
            {"name": model.__name__, "contentType": "application/json", "payload": _schema(model, schemas)},
        )
        return {"$ref": f"#/components/messages/{model.__name__}"}

    for subject, rpc in sorted(REGISTRY.rpcs.items()):
        cid = subject.replace(".", "_")
        channels[cid] = {
            "address": subject,
            "messages": {"request": message(rpc.request), "reply": message(rpc.reply)},
            "description": f"{rpc.summary} (access: {rpc.access}; reply wrapped in Envelope)",
        }
        operations[f"handle_{cid}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/request"}],
            "reply": {"messages": [{"$ref": f"#/channels/{cid}/messages/reply"}]},
            "x-queue-group": rpc.service,
        }
    for subject, ev in sorted(REGISTRY.events.items()):
        cid = subject.replace(".", "_")
        channels[cid] = {
            "address": subject,
            "messages": {"event": message(ev.model)},
            "description": f"{ev.summary} (JetStream stream {ev.stream})",
        }
        operations[f"publish_{cid}"] = {"action": "send", "channel": {"$ref": f"#/channels/{cid}"}}
    for prefix, pr in sorted(REGISTRY.progress.items()):
        cid = prefix.replace(".", "_")
        address = ".".join([prefix, *[f"{{{t}}}" for t in pr.tokens]])
        channels[cid] = {
            "address": address,
            "messages": {"progress": message(pr.model)},
            "parameters": {t: {} for t in pr.tokens},
            "description": pr.summary,
        }
        operations[f"publish_{cid}"] = {"action": "send", "channel": {"$ref": f"#/channels/{cid}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Atrium bus",
            "version": "0.1.0",
            "description": "Every subject of Atrium, generated from contracts/. Headers: x-request-id, "
            "authorization (Bearer access token), traceparent.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
