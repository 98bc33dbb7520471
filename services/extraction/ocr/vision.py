"""Vision models as the OCR provider (Anthropic, Ollama, any OpenAI-compatible server with image input):
paperless-gpt's answer to scans that Tesseract reads badly (handwriting, photos of crumpled receipts).

Each page that needs OCR is drawn once, its long side at most `VISION_MAX_PX` pixels, and sent as a JPEG
with a transcription prompt through the same provider clients the AI worker uses (the official SDKs, their
errors in plain words, retries with backoff on 429/5xx). A model gives the page's text, not where each word
is: such a page has no word boxes (`word_boxes` false) and no place in the PDF with text layer.

The page is drawn in the sandboxed pool child (which has no network and holds no key); the request goes out
from the text worker itself (`VisionClient`), which the child asks page by page over its pipe
(`VisionReader`): the key never enters the process that parses the file, and the connection is checked like
the AI worker's (`providers/network.py`: no link-local or metadata address, local servers only with
`ATRIUM_AI_ALLOW_LOCAL_SERVERS`). An answer that does not come in time, or a server that errs or limits the
rate, fails the attempt (`provider_error` / `timeout`: the run is tried again later); a refusal that another
attempt would meet again (a wrong key, an unknown model) leaves the pages unread with the provider's words as
the reason.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from contracts.documents import VISION_MAX_PX
from services.extraction.ai.providers import ProviderConfig, ProviderError, build_provider
from services.extraction.ai.providers.base import VisionProvider
from services.extraction.ai.providers.network import allow_local_servers_from_env

from .classify import PageContent
from .reader import VISION_ATTEMPTS, OcrOptions, PageOcr, too_large

VISION_DEFAULT_MODELS = {
    "anthropic": "claude-haiku-4-5",
    "ollama": "llama3.2-vision",
    "openai_compatible": "gpt-4o-mini",
}
PROMPT = (
    "Transcribe all the text on this scanned page exactly as it is written, line by line, in reading order "
    "(a table row by row, its cells separated by spaces). Keep numbers, dates, names and punctuation exactly. "
    "Answer with the text only: no introduction, no Markdown, no description of pictures. If the page holds "
    "no text, answer with nothing."
)
JPEG_QUALITY = 85


def page_jpeg(page: Any, max_px: int = VISION_MAX_PX) -> tuple[bytes, int]:
    """The page as displayed, its long side `max_px` pixels, as a JPEG; and the resolution that makes."""
    width, height = page.get_size()
    scale = max_px / max(width, height, 1.0)
    image = page.render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), round(scale * 72)


# What the worker answers the child for one page: ("text", text), ("refused", why) for good, or
# ("retry", why, timed_out) when a later attempt of the run may succeed.
Answer = tuple[Any, ...]
Ask = Callable[[int, bytes], Answer]


def engine_name(options: OcrOptions) -> str:
    return f"{options.provider} {options.model or VISION_DEFAULT_MODELS.get(options.provider, '')}".strip()


class VisionClient:
    """The text worker's side: reads page images with the settings' vision model; `aclose()` ends its
    connections."""

    def __init__(self, options: OcrOptions, allow_local_servers: bool = False):
        self.options = options
        self.provider: VisionProvider | None = None
        self.refused = ""
        try:
            provider = build_provider(
                ProviderConfig(
                    name=options.provider,
                    model=options.model or VISION_DEFAULT_MODELS.get(options.provider, ""),
                    base_url=options.base_url,
                    api_key=options.api_key,
                    timeout_s=options.request_timeout_s,
                    max_attempts=VISION_ATTEMPTS,
                    allow_local_servers=allow_local_servers,
                )
            )
        except ProviderError as err:
            self.refused = err.message
            return
        if not hasattr(provider, "read_image"):
            self.refused = f"The {options.provider} provider cannot read images: choose a vision model."
            return
        self.provider = provider  # type: ignore[assignment]

    async def answer(self, number: int, jpeg: bytes) -> Answer:
        if self.provider is None or self.refused:
            return ("refused", self.refused)
        timeout = self.options.page_limit_s
        try:
            text, _usage = await asyncio.wait_for(self.provider.read_image(jpeg, PROMPT), timeout)
        except TimeoutError:
            return (
                "retry",
                f"{engine_name(self.options)} did not read page {number} within {timeout:g} s.",
                True,
            )
        except ProviderError as err:
            if err.retryable or err.timeout:
                return ("retry", err.message, err.timeout)
            self.refused = err.message
            return ("refused", err.message)
        return ("text", text)

    async def aclose(self) -> None:
        if self.provider is not None:
            await self.provider.aclose()


def ask_in_process(options: OcrOptions) -> tuple[Ask, Callable[[], None]]:
    """Where no worker is on the other end of a pipe (the engine called directly): a client of our own, on an
    event loop of our own; and what closes both."""
    loop = asyncio.new_event_loop()
    client = VisionClient(options, allow_local_servers_from_env())

    def close() -> None:
        try:
            loop.run_until_complete(client.aclose())
        finally:
            loop.close()

    return (lambda number, jpeg: loop.run_until_complete(client.answer(number, jpeg))), close


class VisionReader:
    """The pool child's side: draws each page and asks the worker (`ask`) for its text."""

    def __init__(self, options: OcrOptions, ask: Ask):
        self.options = options
        self.ask = ask
        self.refused = ""  # the provider's reason, once it refused in a way another page would meet again

    def engine(self) -> str:
        return engine_name(self.options)

    def unavailable(self) -> str:
        return self._why(self.refused) if self.refused else ""

    @staticmethod
    def _why(message: str) -> str:
        return (
            f"The vision OCR provider refused: {message} Check the OCR provider, model and key in the "
            "Documents settings, then re-process the document."
        )

    def read(self, page: Any, number: int, content: PageContent) -> PageOcr:
        """Raises `ProviderError` when the attempt should be repeated later (timeouts, 429, 5xx)."""
        width, height = page.get_size()
        out = PageOcr(number=number, width=width, height=height, engine=self.engine())
        if reason := too_large(number, content, self.options):
            out.reason = reason
            return out
        if self.refused:
            out.reason = self.unavailable()
            return out
        started = time.perf_counter()
        jpeg, out.dpi = page_jpeg(page, self.options.vision_max_px)
        out.ms["render"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        answer = self.ask(number, jpeg)
        if answer[0] == "retry":
            raise ProviderError(answer[1], retryable=True, timeout=bool(answer[2]), mask=False)
        if answer[0] == "refused":
            self.refused = answer[1]
            out.reason = self.unavailable()
            return out
        out.ms["recognize"] = (time.perf_counter() - started) * 1000
        out.text = str(answer[1]).strip()
        return out
