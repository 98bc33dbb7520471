"""Settings are for administrators only — at the gateway and straight on the bus — and the API key
never appears in a reply or a log line."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from contracts import Empty, Forbidden, Invalid, Unauthenticated
from contracts.ai import AI_SETTINGS_GET, AI_SETTINGS_TEST, AI_SETTINGS_UPDATE
from contracts.documents import DocumentsSettingsStored, DocumentsSettingsUpdate
from services.docs.settings_store import apply_update, documents_secret_box, to_public
from services.kit.client import call
from services.kit.logging import JsonFormatter
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS, INVOICE_PAGE, PipelineWatch, publish_extracted
from tests.fakes_llm.server import FakeLLM

URL = "/apps/documents/settings"
API_KEY = "sk-secret-never-logged-4f9a2c71e0b3"


async def test_non_admin_gets_403_from_the_endpoints(http: httpx.AsyncClient, new_user: AppUser) -> None:
    for method, path, body in (
        ("GET", URL, None),
        ("PATCH", URL, {"provider": "ollama"}),
        ("POST", URL + "/test", {}),
    ):
        r = await http.request(method, path, json=body, headers=new_user.headers)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:  # `http` holds the login cookies
        r = await anonymous.get(URL)
    assert r.status_code == 401, r.text


async def test_non_admin_is_refused_straight_on_the_bus(stack: Stack, new_user: AppUser) -> None:
    for desc, payload in (
        (AI_SETTINGS_GET, Empty()),
        (AI_SETTINGS_UPDATE, {"provider": "ollama"}),
        (AI_SETTINGS_TEST, {}),
    ):
        with pytest.raises(Forbidden):
            await call(stack.nc, desc, payload, token=new_user.access_token)
        with pytest.raises(Unauthenticated):
            await call(stack.nc, desc, payload)
        with pytest.raises(Unauthenticated):
            await call(stack.nc, desc, payload, token="eyJhbGciOiJub25lIn0.eyJyb2xlIjoiYWRtaW4ifQ.")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest_asyncio.fixture
async def every_log_line() -> AsyncIterator[Capture]:
    """Every log record of the process (services, gateway, SDKs, httpx) at DEBUG, formatted as in production."""
    capture = Capture()
    root = logging.getLogger()
    names = [
        "",
        "atrium",
        "openai",
        "anthropic",
        "ollama",
        "httpx",
        "httpcore",
        "faststream",
        "nats",
        "uvicorn",
    ]
    levels = {n: logging.getLogger(n).level for n in names}
    root.addHandler(capture)
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


async def test_api_key_never_in_a_reply_or_a_log_line(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, every_log_line: Capture
) -> None:
    fake = await FakeLLM(api_key=API_KEY).start()
    replies: list[str] = []
    try:
        r = await http.patch(
            URL,
            json={
                "provider": "anthropic",
                "base_url": fake.base_url,
                "model": "fake-model-1",
                "api_key": API_KEY,
            },
            headers=new_admin.headers,
        )
        assert r.status_code == 200
        replies.append(r.text)
        replies.append((await http.get(URL, headers=new_admin.headers)).text)
        r = await http.post(URL + "/test", headers=new_admin.headers)
        assert r.json()["ok"] is True, r.text
        replies.append(r.text)
        r = await http.post(URL + "/test", json={"api_key": API_KEY + "x"}, headers=new_admin.headers)
        assert r.json()["ok"] is False
        replies.append(r.text)
        fake.queue("429", "wrong_fields")  # error paths log too
        async with PipelineWatch(stack.nc) as watch:
            event = await publish_extracted(stack.nc, [INVOICE_PAGE])
            analyzed = await watch.analyzed(event.document_id)
        replies.append(analyzed.model_dump_json())
        assert len(fake.hits("/v1/messages")) == 5  # ping, wrong-key ping, 429, wrong fields, good answer
    finally:
        r = await http.patch(URL, json=BUILTIN_DEFAULTS, headers=new_admin.headers)
        await fake.stop()
    assert every_log_line.lines, "the capture saw nothing; the test would prove nothing"
    assert any("documents settings changed" in line for line in every_log_line.lines)
    for text in replies + every_log_line.lines:
        assert API_KEY not in text and API_KEY[4:] not in text


def test_the_key_box_detects_tampering_and_other_secrets() -> None:
    box = documents_secret_box("platform-secret-one")
    sealed = box.encrypt(API_KEY)
    assert API_KEY not in sealed and box.encrypt(API_KEY) != sealed  # a fresh nonce every time
    assert box.decrypt(sealed) == API_KEY
    assert documents_secret_box("platform-secret-two").decrypt(sealed) == ""
    version, _, body = sealed.partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    assert box.decrypt(f"{version}:{base64.urlsafe_b64encode(bytes(raw)).decode()}") == ""
    with pytest.raises(Invalid, match="ATRIUM_SECRET"):
        documents_secret_box("").encrypt(API_KEY)


def test_stored_settings_never_hold_the_clear_key() -> None:
    stored = apply_update(
        DocumentsSettingsStored(), DocumentsSettingsUpdate(api_key=API_KEY), documents_secret_box("s3cret")
    )
    assert API_KEY not in stored.model_dump_json() and stored.api_key_last4 == API_KEY[-4:]
    public = to_public(stored).model_dump_json()
    assert API_KEY not in public and '"api_key_set":true' in public
    assert API_KEY not in repr(DocumentsSettingsUpdate(api_key=API_KEY))
