"""Runtime settings of the Documents app in the NATS KV bucket `settings` (key `documents`).

Every process that needs them (AI worker, documents service, gateway) keeps a `SettingsStore`
started: it loads the stored value (defaults when the key is absent, so a fresh install runs the
offline `builtin` provider), then follows the key with a KV watch, so a change applies to the next
document without a restart. Only the ai service writes (`ai.settings.update`).

The API keys (the AI provider's and the vision OCR provider's) are stored encrypted with AES-256-GCM under a
key derived by HKDF-SHA256 from the platform secret (`ATRIUM_SECRET`), each bound to its field (the AEAD's
associated data); only their last four characters are kept in clear for display.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from pydantic import ValidationError

from contracts import Conflict, Invalid
from contracts.documents import (
    OCR_ENGINES_BUCKET,
    OCR_ENGINES_TTL_S,
    SETTINGS_BUCKET,
    SETTINGS_KEY,
    DocumentsSettingsPublic,
    DocumentsSettingsStored,
    DocumentsSettingsUpdate,
    OcrEngineInfo,
)
from services.kit.jetstream import ensure_kv
from services.kit.logging import log_fields
from services.kit.secretbox import SecretBox
from services.kit.validation import validation_details

log = logging.getLogger("atrium.settings")

API_KEY_AAD = b"atrium/settings/documents/api_key"
OCR_KEY_AAD = b"atrium/settings/documents/ocr_api_key"


def documents_secret_box(platform_secret: str) -> SecretBox:
    """The box of the Documents API keys (key derivation and associated data as since v1); the OCR
    provider's key is sealed in the same box under its own associated data (`OCR_KEY_AAD`)."""
    return SecretBox(
        platform_secret,
        purpose=b"documents api key",
        aad=API_KEY_AAD,
        missing_hint="set it and restart the ai service",
    )


def to_public(stored: DocumentsSettingsStored) -> DocumentsSettingsPublic:
    data = stored.model_dump(
        exclude={
            "api_key_ciphertext",
            "api_key_last4",
            "ocr_api_key_ciphertext",
            "ocr_api_key_last4",
            "revision",
        }
    )
    return DocumentsSettingsPublic(
        **data,
        api_key_set=bool(stored.api_key_ciphertext),
        api_key_last4=stored.api_key_last4 if stored.api_key_ciphertext else "",
        ocr_api_key_set=bool(stored.ocr_api_key_ciphertext),
        ocr_api_key_last4=stored.ocr_api_key_last4 if stored.ocr_api_key_ciphertext else "",
    )


# Settings whose "no value" means something (no limit): null in a PATCH clears them; for the others null
# leaves the value as it is.
CLEARABLE = frozenset(k for k, f in DocumentsSettingsStored.model_fields.items() if f.default is None)


# Each stored key was entered for one provider at one address: it is never sent anywhere else. Key → the
# settings that say where it goes, what it is called in an error, and the provider that sends nothing anywhere.
KEY_BOUND_TO: dict[str, tuple[str, str]] = {
    "api_key": ("provider", "base_url"),
    "ocr_api_key": ("ocr_provider", "ocr_base_url"),
}
KEY_LABEL = {
    "api_key": ("API key", "the provider or the base URL"),
    "ocr_api_key": ("OCR API key", "the OCR provider or the OCR base URL"),
}
SENDS_NOTHING = {"api_key": "builtin", "ocr_api_key": "tesseract"}


def moves_the_key(stored: DocumentsSettingsStored, changes: dict[str, object], key: str = "api_key") -> bool:
    """Whether `changes` point `key`'s provider somewhere other than where the stored key was entered for."""
    return any(k in changes and changes[k] != getattr(stored, k) for k in KEY_BOUND_TO[key])


def borrows_the_ai_key(stored: DocumentsSettingsStored) -> bool:
    """Vision OCR without a key of its own uses the AI provider's, but only at the very place that key was
    entered for: the same provider and the same base URL."""
    return (
        not stored.ocr_api_key_ciphertext
        and stored.ocr_provider != SENDS_NOTHING["ocr_api_key"]
        and all(
            getattr(stored, ai) == getattr(stored, ocr)
            for ai, ocr in zip(KEY_BOUND_TO["api_key"], KEY_BOUND_TO["ocr_api_key"], strict=True)
        )
    )


def key_in_effect(stored: DocumentsSettingsStored, key: str) -> bool:
    if key == "ocr_api_key" and borrows_the_ai_key(stored):
        return bool(stored.api_key_ciphertext)
    return bool(getattr(stored, f"{key}_ciphertext"))


def apply_update(
    stored: DocumentsSettingsStored, update: DocumentsSettingsUpdate, box: SecretBox
) -> DocumentsSettingsStored:
    """PATCH: only the fields sent change; `api_key: ""` clears the key; null removes a quota. Another
    provider or base URL needs that provider's key entered again (or `""`), so a stored key never goes to a
    new host (the AI key, and the OCR key — or the AI key the OCR borrows — alike); only switching to the
    builtin extractor or to Tesseract, which send nothing anywhere, keeps it unused."""
    changes = {
        k: v
        for k, v in update.model_dump(exclude={"api_key", "ocr_api_key"}, exclude_unset=True).items()
        if v is not None or k in CLEARABLE
    }
    for key, (provider, _) in KEY_BOUND_TO.items():
        if (
            getattr(update, key) is None
            and key_in_effect(stored, key)
            and moves_the_key(stored, changes, key)
            and changes.get(provider, getattr(stored, provider)) != SENDS_NOTHING[key]
        ):
            label, where = KEY_LABEL[key]
            raise Invalid(
                f"Enter the {label} again when you change {where} (or send an empty one to remove it): the "
                "saved key is only sent where it was entered for.",
                [{"field": key, "message": f"required when {where} changes"}],
            )
    for secret, prefix, aad in (
        (update.api_key, "api_key", API_KEY_AAD),
        (update.ocr_api_key, "ocr_api_key", OCR_KEY_AAD),
    ):
        if secret is not None:
            clear = secret.get_secret_value().strip()
            changes[f"{prefix}_ciphertext"] = box.encrypt(clear, aad) if clear else ""
            changes[f"{prefix}_last4"] = clear[-4:] if len(clear) >= 8 else ""
    try:
        return DocumentsSettingsStored.model_validate(
            {**stored.model_dump(), **changes, "revision": stored.revision + 1}
        )
    except ValidationError as err:
        raise Invalid(
            "These settings are not valid: fix the listed fields.", validation_details(err)
        ) from None


class SettingsStore:
    def __init__(
        self, js: Any, platform_secret: str, *, bucket: str = SETTINGS_BUCKET, key: str = SETTINGS_KEY
    ):
        self.js = js
        self.bucket = bucket
        self.key = key
        self.box = documents_secret_box(platform_secret)
        self.current = DocumentsSettingsStored()
        self.kv_revision = 0  # the KV sequence of `current` (0: absent), for compare-and-set writes
        self.kv: Any = None
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.kv = await ensure_kv(self.js, self.bucket, history=5)
        try:
            entry = await self.kv.get(self.key)
            await self._apply(entry.value, entry.revision)
        except KeyNotFoundError:
            pass
        self._watcher = await self.kv.watch(self.key, include_history=False)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._watcher is not None:
            try:
                await self._watcher.stop()
            except Exception:
                pass

    async def _follow(self) -> None:
        while True:
            try:
                async for entry in self._watcher:
                    if entry is None:  # end of the initial values
                        continue
                    deleted = entry.operation in ("DEL", "PURGE")
                    await self._apply(None if deleted else entry.value, entry.revision)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnects surface here; keep following
                log_fields(log, logging.WARNING, "settings watch interrupted", error=repr(exc))
                await asyncio.sleep(1)
                try:
                    self._watcher = await self.kv.watch(self.key, include_history=False)
                except Exception:
                    continue

    async def _apply(self, value: bytes | None, revision: int) -> None:
        if revision and revision < self.kv_revision:
            return  # an older value delivered late
        try:
            stored = (
                DocumentsSettingsStored.model_validate_json(value) if value else DocumentsSettingsStored()
            )
        except ValidationError as err:
            log_fields(
                log,
                logging.ERROR,
                "stored settings are invalid; keeping the previous ones",
                errors=len(err.errors()),
            )
            return
        self.current, self.kv_revision = stored, revision
        log_fields(
            log,
            logging.INFO,
            "documents settings loaded",
            provider=stored.provider,
            model=stored.model,
            revision=stored.revision,
        )

    # ---- reading ---------------------------------------------------------------------------------
    def public(self) -> DocumentsSettingsPublic:
        return to_public(self.current)

    def api_key(self, stored: DocumentsSettingsStored | None = None) -> str:
        stored = stored or self.current
        return self.box.decrypt(stored.api_key_ciphertext) if stored.api_key_ciphertext else ""

    def ocr_api_key(self, stored: DocumentsSettingsStored | None = None) -> str:
        """The vision OCR provider's key; without one, the AI provider's when it goes to the same provider at
        the same base URL (`borrows_the_ai_key`)."""
        stored = stored or self.current
        if stored.ocr_api_key_ciphertext:
            return self.box.decrypt(stored.ocr_api_key_ciphertext, OCR_KEY_AAD)
        return self.api_key(stored) if borrows_the_ai_key(stored) else ""

    async def ocr_engines(self) -> list[OcrEngineInfo]:
        """What the running text workers announced they can read (`OCR_ENGINES_BUCKET`, one key each)."""
        kv = await ensure_kv(self.js, OCR_ENGINES_BUCKET, ttl_s=OCR_ENGINES_TTL_S)
        try:
            keys = await kv.keys()
        except NoKeysError:
            return []
        found = []
        for key in keys:
            try:
                found.append(OcrEngineInfo.model_validate_json((await kv.get(key)).value or b""))
            except (KeyNotFoundError, ValidationError):
                continue  # expired meanwhile, or not ours to read
        return found

    # ---- writing (the ai service only) ----------------------------------------------------------
    async def update(self, update: DocumentsSettingsUpdate) -> DocumentsSettingsStored:
        """Apply a PATCH with compare-and-set on the KV revision, so two admins never lose an edit silently."""
        for _ in range(3):
            try:
                entry = await self.kv.get(self.key)
                base, rev = DocumentsSettingsStored.model_validate_json(entry.value), entry.revision
            except KeyNotFoundError:
                base, rev = DocumentsSettingsStored(), 0
            new = apply_update(base, update, self.box)
            body = new.model_dump_json().encode()
            try:
                seq = await (
                    self.kv.update(self.key, body, last=rev) if rev else self.kv.create(self.key, body)
                )
            except KeyWrongLastSequenceError:
                continue
            except Exception as exc:
                if "wrong last sequence" in str(exc).lower() or "key exists" in str(exc).lower():
                    continue
                raise
            await self._apply(body, seq)
            return new
        raise Conflict("The settings were changed by someone else at the same time; load them and try again.")
