"""The HTTP API against its own OpenAPI: schemathesis, as a client would run it, over every operation.

`st run` reads `/api/openapi.json` of the test stack's gateway and sends each operation its examples, the
coverage phase's boundary values (missing and extreme parameters, wrong types, other methods) and
derandomized property-based cases, positive and negative. It reuses what answers revealed (an id from a
list, say) in later requests, so it reaches real objects, not only 404s. Checks: no 5xx, only documented
statuses, content types and headers, bodies as their schemas say, and no success without the token.

Each run signs in with a fresh account (a user, or an administrator) that has a document and a category,
with a real bearer token. An operation that could spoil a shared run (end its own session, change its own
password, delete every document) runs alone with its own account; an administrator's operations on accounts
run together where they know only generated ids. A few operations are not fuzzed, for the reasons in EXCLUDED.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from gateway import openapi
from tests.conftest import CORPUS, PASSWORD, Stack, create_admin, register_and_login

INVOICE = CORPUS / "synthetic" / "invoice_1p.pdf"

OPERATION_IDS = {op["operationId"] for path in openapi.spec()["paths"].values() for op in path.values()}
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,ignored_auth"
)
# Fuzzing cases per operation on top of the examples and the coverage phase; ATRIUM_FUZZ_EXAMPLES=200 digs deeper.
EXAMPLES = os.environ.get("ATRIUM_FUZZ_EXAMPLES", "10")

EXCLUDED = {
    "events": "an endless text/event-stream; test_events_stream checks its statuses and media type",
    "update_settings": "changes the Documents settings every test of the session relies on (quotas, "
    "provider); tests/integration/test_settings.py covers its validation",
    "test_settings": "makes the ai service contact the provider URL of the body: fuzzed URLs would leave "
    "the machine; tests/integration/test_settings.py covers it",
    "upsert_provider": "fetches the discovery document of the issuer URL of the body: fuzzed URLs would leave "
    "the machine; tests/integration/test_auth_sso.py covers it against a real provider",
    "update_external": "makes every sign-in call the token URL of the body: fuzzed URLs would leave the "
    "machine; tests/integration/test_auth_external.py covers it against a real server",
    "update_policy": "changes the sign-in policy every test of the session sees (must_enrol_second_factor); "
    "tests/integration/test_auth_totp.py covers its validation",
}
# Would spoil a shared run: end its own session, change its own password or address, delete or reprocess
# every document of the account at once. Each runs alone, as each role, with its own account.
ON_ITS_OWN_ACCOUNT = {"logout", "logout_all", "end_session", "change_password", "change_email", "bulk"}
# An administrator's operations on accounts and on the app registry: in a shared run they could reach the
# run's own account through the ids it lists (GET /auth/me, GET /admin/users) and deactivate, demote, delete or
# sign out itself. Together in one run that lists nothing, they know only generated ids; configure_app's
# global default is put back afterwards. As a user they are refused (403) and run in the shared run.
ON_OTHER_ACCOUNTS = {
    "update_user",
    "delete_user",
    "end_sessions",
    "start_reset",
    "grant",
    "revoke",
    "add_member",
    "configure_app",
}
ALONE = ON_ITS_OWN_ACCOUNT | ON_OTHER_ACCOUNTS

RUNS = [
    pytest.param("user", (), id="user: shared"),
    pytest.param("admin", (), id="admin: shared"),
    pytest.param("admin", tuple(sorted(ON_OTHER_ACCOUNTS)), id="admin: on other accounts"),
]
RUNS += [
    pytest.param(role, (op,), id=f"{role}: {op}")
    for op in sorted(ON_ITS_OWN_ACCOUNT)
    for role in ("user", "admin")
]


async def signed_in(stack: Stack, http: httpx.AsyncClient, role: str) -> dict[str, str]:
    """A fresh account with a document and a category, so the run reaches real objects, not only 404s."""
    if role == "user":
        headers = (await register_and_login(http)).headers
    else:
        email = await create_admin(stack)
        r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await http.post("/documents", headers=headers, files={"file": ("invoice.pdf", INVOICE.read_bytes())})
    assert r.status_code == 201, r.text
    r = await http.post("/categories", headers=headers, json={"name": "Fuzzed"})
    assert r.status_code == 201, r.text
    return headers


def schemathesis_command(base_url: str, authorization: str, selection: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/api/openapi.json",
        "--header",
        f"Authorization: {authorization}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        EXAMPLES,
        "--generation-deterministic",  # derandomized, and no example database
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        *selection,
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("role", "alone"), RUNS)
async def test_api_keeps_its_contract(
    stack: Stack, http: httpx.AsyncClient, tmp_path: Path, role: str, alone: tuple[str, ...]
) -> None:
    if alone:
        selection = [arg for op in alone for arg in ("--include-operation-id", op)]
    else:
        left_out = EXCLUDED.keys() | (ALONE if role == "admin" else ON_ITS_OWN_ACCOUNT)
        selection = [arg for op in sorted(left_out) for arg in ("--exclude-operation-id", op)]
    headers = await signed_in(stack, http, role)
    apps = (await http.get("/admin/apps", headers=headers)).json()
    # The CLI runs in a subprocess while this event loop serves the stack it sends requests to.
    process = await asyncio.create_subprocess_exec(
        *schemathesis_command(stack.base_url, headers["Authorization"], selection),
        cwd=tmp_path,  # where the CLI keeps its replay data (`st replay <id>` from there)
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=1200)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    finally:
        if role == "admin":  # configure_app changes a global default: put it back for the tests that follow
            for app in apps["apps"]:
                await http.patch(
                    f"/admin/apps/{app['key']}",
                    json={"default_grant": app["default_grant_override"]},
                    headers=headers,
                )
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-20000:]


def test_every_operation_is_fuzzed_or_excluded_with_a_reason() -> None:
    assert EXCLUDED.keys() <= OPERATION_IDS and ALONE <= OPERATION_IDS
    assert not EXCLUDED.keys() & ALONE


async def test_events_stream(stack: Stack, http: httpx.AsyncClient) -> None:
    """`GET /events` as documented: 401 without a token; with one, 200 `text/event-stream` saying `connected`."""
    r = await http.get("/events")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    user = await register_and_login(http)
    async with http.stream("GET", "/events", headers=user.headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith(": connected"):
                break
