"""Issue 12: the vision OCR provider's key is bound to its provider and base URL, as the AI key is
(test_ai_settings.py): saving another OCR provider or OCR base URL needs the key again, over HTTP and straight
on the bus, and nothing changes without it; the AI key the OCR borrows (no OCR key of its own) goes only to the
AI's own provider and base URL, never to another OCR base URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from contracts import Invalid
from contracts.ai import AI_SETTINGS_UPDATE
from contracts.documents import DocumentsSettingsStored, DocumentsSettingsUpdate
from services.docs.settings_store import apply_update, borrows_the_ai_key, documents_secret_box
from services.extraction.text.handlers import Deps
from services.kit.client import call
from tests.conftest import AppUser, Stack
from tests.fakes_llm.helpers import BUILTIN_DEFAULTS, wait_for_provider

URL = "/apps/documents/settings"
OCR_KEY = "sk-ocr-key-for-the-first-host-51c0aa"
AI_KEY = "sk-ai-key-for-the-ai-host-0d9e7b"
FIRST, SECOND = "http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"  # never contacted: saving sends nothing
OCR_DEFAULTS = {"ocr_provider": "tesseract", "ocr_base_url": "", "ocr_model": "", "ocr_api_key": ""}


@pytest_asyncio.fixture
async def admin(stack: Stack, new_admin: AppUser) -> AsyncIterator[AppUser]:
    yield new_admin
    await call(
        stack.nc, AI_SETTINGS_UPDATE, {**BUILTIN_DEFAULTS, **OCR_DEFAULTS}, token=new_admin.access_token
    )
    await wait_for_provider(stack.nc, new_admin.access_token, "builtin")


async def worker_key(stack: Stack, want: str, timeout_s: float = 10.0) -> str:
    """The key the text worker would send with the next vision OCR request, once it followed the settings."""
    deps = stack.services["extract"].deps_as(Deps)

    async def poll() -> str:
        while True:  # the worker follows the settings bucket in a task of its own
            if (key := deps.ocr_options().api_key) == want:
                return key
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout_s)


async def test_the_saved_ocr_key_never_goes_to_another_host(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser
) -> None:
    body = {"ocr_provider": "openai_compatible", "ocr_base_url": FIRST, "ocr_api_key": OCR_KEY}
    r = await http.patch(URL, json=body, headers=admin.headers)
    assert r.status_code == 200 and r.json()["ocr_api_key_last4"] == OCR_KEY[-4:], r.text
    await worker_key(stack, OCR_KEY)  # where it belongs
    # Another OCR base URL or provider needs the key again; nothing changes without it.
    r = await http.patch(URL, json={"ocr_base_url": SECOND}, headers=admin.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"][0]["field"] == "ocr_api_key" and "OCR API key again" in error["message"]
    with pytest.raises(Invalid):
        await call(stack.nc, AI_SETTINGS_UPDATE, {"ocr_provider": "ollama"}, token=admin.access_token)
    settings = (await http.get(URL, headers=admin.headers)).json()
    assert settings["ocr_base_url"] == FIRST and settings["ocr_provider"] == "openai_compatible"
    assert settings["ocr_api_key_set"] is True
    # The AI key's binding is separate: moving the OCR does not ask for the AI key, nor the reverse.
    r = await http.patch(
        URL, json={"ocr_base_url": SECOND, "ocr_api_key": "sk-other-0000000000"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["ocr_api_key_last4"] == "0000", r.text
    await worker_key(stack, "sk-other-0000000000")
    # Tesseract sends nothing anywhere: switching to it keeps the key, unused.
    r = await http.patch(URL, json={"ocr_provider": "tesseract"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["ocr_api_key_set"] is True, r.text
    await worker_key(stack, "")


async def test_the_borrowed_ai_key_stays_at_the_ai_host(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser
) -> None:
    ai = {"provider": "openai_compatible", "base_url": FIRST, "api_key": AI_KEY}
    assert (await http.patch(URL, json=ai, headers=admin.headers)).status_code == 200
    r = await http.patch(
        URL, json={"ocr_provider": "openai_compatible", "ocr_base_url": FIRST}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["ocr_api_key_set"] is False, r.text
    await worker_key(stack, AI_KEY)  # the same provider at the same address: the AI key is used
    # Pointing the OCR elsewhere without a key of its own is refused: the AI key would follow it.
    r = await http.patch(URL, json={"ocr_base_url": SECOND}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "ocr_api_key", r.text
    # An empty OCR key says "none": saved, and the AI key stays where it was entered for.
    r = await http.patch(URL, json={"ocr_base_url": SECOND, "ocr_api_key": ""}, headers=admin.headers)
    assert r.status_code == 200, r.text
    await worker_key(stack, "")
    assert (await http.get(URL, headers=admin.headers)).json()["api_key_last4"] == AI_KEY[-4:]


def test_the_ai_key_is_borrowed_only_at_its_own_address() -> None:
    box = documents_secret_box("s3cret")
    ai = apply_update(
        DocumentsSettingsStored(),
        DocumentsSettingsUpdate(provider="openai_compatible", base_url=FIRST, api_key=AI_KEY),
        box,
    )
    same = ai.model_copy(update={"ocr_provider": "openai_compatible", "ocr_base_url": FIRST})
    assert borrows_the_ai_key(same)
    for elsewhere in (
        {"ocr_base_url": SECOND},  # another address: before, the AI key went along to it
        {"ocr_provider": "ollama"},
        {"ocr_provider": "tesseract"},
        {"ocr_api_key_ciphertext": box.encrypt("sk-own-ocr-key-1234", b"x")},  # it has its own
    ):
        assert not borrows_the_ai_key(same.model_copy(update=elsewhere)), elsewhere
    with pytest.raises(Invalid) as refused:
        apply_update(same, DocumentsSettingsUpdate(ocr_base_url=SECOND), box)
    assert refused.value.details[0]["field"] == "ocr_api_key"
    # The AI key's own rule is unchanged: moving the AI provider asks for the AI key, not the OCR key.
    with pytest.raises(Invalid) as refused:
        apply_update(same, DocumentsSettingsUpdate(base_url=SECOND), box)
    assert refused.value.details[0]["field"] == "api_key"


@pytest.mark.parametrize(
    "base_url",
    ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "file:///etc/passwd"],
)
async def test_an_ocr_base_url_to_a_blocked_address_is_refused_when_saved(
    http: httpx.AsyncClient, stack: Stack, admin: AppUser, base_url: str
) -> None:
    """Checked at save time as the AI base URL is (check_destination): not only when the OCR connects."""
    body = {"ocr_provider": "openai_compatible", "ocr_base_url": base_url, "ocr_api_key": OCR_KEY}
    r = await http.patch(URL, json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid" and error["details"][0]["field"] == "ocr_base_url", r.text
    assert OCR_KEY not in r.text
    settings = (await http.get(URL, headers=admin.headers)).json()
    assert settings["ocr_provider"] == "tesseract" and settings["ocr_base_url"] == "", settings
    with pytest.raises(Invalid):  # the same straight on the bus
        await call(stack.nc, AI_SETTINGS_UPDATE, body, token=admin.access_token)
