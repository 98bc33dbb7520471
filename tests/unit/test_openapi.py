"""The gateway's OpenAPI document is a contract a client can be generated from (no server started).

Every operation names its inputs (typed query parameters and bodies, never a free `dict`), documents every
error status it can answer with the error envelope, and says the media type of every non-JSON answer.
tests/integration/test_api_fuzz.py checks the running gateway against the same document.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts

from contracts import docs_api
from contracts.auth import ListAudit, ListUsers
from gateway import openapi
from gateway.app import create_app
from gateway.routes.tasks import ExportTasksQuery
from gateway.settings import GatewaySettings

DOC = openapi.spec()
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
UNSAFE = {"post", "put", "patch", "delete"}
# Every route under /api/v1 calls a service over the bus; the health check answers for itself.
SELF_ANSWERING = {("get", "/api/v1/health")}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in DOC["paths"].items() for method, op in item.items()]


OPERATIONS = operations()
IDS = [f"{m.upper()} {p}" for m, p, _ in OPERATIONS]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return DOC["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_the_document_covers_the_api() -> None:
    assert DOC["openapi"].startswith("3.")
    assert len(OPERATIONS) >= 60
    assert "HTTPValidationError" not in DOC["components"]["schemas"], "422 is the error envelope here"
    assert "ValidationError" not in DOC["components"]["schemas"]


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_every_error_status_is_documented_with_the_envelope(method: str, path: str, op: dict) -> None:
    responses = op["responses"]
    statuses = {int(s) for s in responses}
    expected = set()
    if (method, path) not in SELF_ANSWERING:
        expected |= {422, 500, 503, 504}
    # /health: a token only unlocks the details; a bad one gets the public answer, never a 401.
    if op.get("security") and (method, path) != ("get", "/api/v1/health"):
        expected.add(401)
        if method in UNSAFE:
            expected.add(403)  # a cookie-authenticated request without the CSRF header
    if any(p["in"] == "path" for p in op.get("parameters", [])):
        expected.add(404)
    assert expected <= statuses, f"undocumented: {sorted(expected - statuses)}"
    for status, response in responses.items():
        if int(status) < 400 or (method, path) in SELF_ANSWERING:
            continue
        assert response["content"] == {"application/json": {"schema": ENVELOPE}}, status
        code = re.match(r"`(\w+)`: ", response["description"])
        assert code, f"{status}: the description names the error code"
        if status in ("429", "503", "504"):  # busy, down or too slow: when to try again
            assert "Retry-After" in response["headers"], status


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_every_answer_has_a_media_type_and_a_schema(method: str, path: str, op: dict) -> None:
    for status, response in op["responses"].items():
        if status == "204":
            assert "content" not in response
            continue
        content = response.get("content")
        assert content, f"{status} says nothing of its body"
        for media, body in content.items():
            schema = body.get("schema") or body.get("itemSchema")
            assert schema, f"{status} {media}: no schema"
            if media == "application/json":
                # One shape, or one of named shapes (a refresh from the cookie or from the body).
                for one in schema.get("anyOf", [schema]):
                    assert resolve(one).get("type") in ("object", "array") or "$ref" in one, schema


NON_JSON = {
    ("get", "/api/v1/documents/{doc_id}/file"): {"application/pdf", "image/jpeg", "image/png", "image/tiff"},
    ("get", "/api/v1/documents/{doc_id}/text-layer"): {"application/pdf"},
    ("get", "/api/v1/documents/{doc_id}/pages/{page}/preview"): {"image/png"},
    ("get", "/api/v1/profile/avatar"): {"image/png", "image/jpeg", "image/webp"},
    ("get", "/api/v1/tasks/export"): {"text/csv", "application/json"},
    ("get", "/api/v1/documents/export"): {"application/zip"},
    ("get", "/api/v1/events"): {"text/event-stream"},
    ("get", "/api/v1/share-links/{link_token}/file"): {"application/pdf"},
    ("get", "/api/v1/share-links/{link_token}/pages/{page}/preview"): {"image/png"},
}


def test_routes_that_answer_other_than_json_declare_their_media_types() -> None:
    app = create_app(GatewaySettings())
    found = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.status_code == 204:
            continue
        # A route's default (JSONResponse) comes wrapped in FastAPI's DefaultPlaceholder.
        response_class = getattr(route.response_class, "value", route.response_class)
        if not issubclass(response_class, JSONResponse):
            for method in route.methods - {"HEAD"}:
                ok = DOC["paths"][context.path_format][method.lower()]["responses"]["200"]
                found[(method.lower(), context.path_format)] = set(ok["content"])
    assert found == NON_JSON
    events = DOC["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    data = events["itemSchema"]["properties"]["data"]["contentSchema"]
    assert resolve(data)["title"] == "DocumentProgress"


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_request_bodies_are_typed(method: str, path: str, op: dict) -> None:
    body = op.get("requestBody")
    if body is None:
        return
    for media, content in body["content"].items():
        schema = content["schema"]
        if media in ("application/json", "application/x-www-form-urlencoded"):
            # An optional body (`Model | None`) is the model or JSON null.
            schema = next((s for s in schema.get("anyOf", []) if "$ref" in s), schema)
            model = resolve(schema)
            assert "$ref" in schema and model.get("properties"), f"{media}: an untyped body"
            assert model.get("additionalProperties") is not True
        else:
            assert schema == {"type": "string", "format": "binary"} or schema["properties"], media


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/api/v1/documents", docs_api.ListDocuments),
        ("/api/v1/tasks", docs_api.ListTasks),
        ("/api/v1/tasks/stats", docs_api.TaskStatsQuery),
        ("/api/v1/tasks/export", ExportTasksQuery),
        ("/api/v1/admin/users", ListUsers),
        ("/api/v1/admin/audit", ListAudit),
    ],
)
def test_list_routes_document_every_query_parameter(path: str, model: type) -> None:
    params = DOC["paths"][path]["get"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "query"} == set(model.model_fields)
    by_name = {p["name"]: p["schema"] for p in params}
    if "status" in by_name:
        assert by_name["status"]["type"] == "array" and by_name["status"]["items"]["enum"]
    if "limit" in by_name:
        assert by_name["limit"]["maximum"] >= by_name["limit"]["minimum"] == 1
    if "offset" in by_name:
        assert "maximum" in by_name["offset"], "an unbounded offset reaches the database"


def test_operation_ids_are_the_route_names_and_unique() -> None:
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    by_path = {(m, p): op["operationId"] for m, p, op in OPERATIONS}
    assert by_path[("get", "/api/v1/documents")] == "list_documents"
    assert by_path[("patch", "/api/v1/documents/{doc_id}")] == "update_document"


def test_schema_names_are_plain_and_meaningful() -> None:
    names = set(DOC["components"]["schemas"])
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", n) for n in names), sorted(names)
    assert {
        "DocumentPage",
        "DocumentEdit",
        "DocumentDetail",
        "TaskPage",
        "UploadBatch",
        "ErrorEnvelope",
        "DocumentProgress",
    } <= names
