"""Vision models as the OCR provider (Anthropic, Ollama, any OpenAI-compatible server with image input):
paperless-gpt's answer to scans that Tesseract reads badly (handwriting, photos of crumpled receipts).

Each page that needs OCR is drawn once, its long side at most `VISION_MAX_PX` pixels, and sent as a JPEG
with a transcription prompt through the same provider clients the AI worker uses (the official SDKs, their
errors in plain words, retries with backoff on 429/5xx). A model gives the page's text, not where each word
is: such a page has no word boxes (`word_boxes` false) and no place in the PDF with text layer.

Runs in the pool child like Tesseract, with an event loop of its own for the document. An answer that does
not come in time, or a server that errs or limits the rate, fails the attempt (`provider_error` / `timeout`:
the run is tried again later); a refusal that another attempt would meet again (a wrong key, an unknown
model) leaves the pages unread with the provider's words as the reason.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from contracts.documents import VISION_MAX_PX
from services.extraction.ai.providers import ProviderConfig, ProviderError, build_provider
from services.extraction.ai.providers.base import VisionProvider

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


class VisionReader:
    """Reads the pages of one document with a vision model; `close()` ends its connections."""

    def __init__(self, options: OcrOptions):
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.provider: VisionProvider | None = None
        self.refused = ""  # the provider's reason, once it refused in a way another page would meet again
        try:
            provider = build_provider(
                ProviderConfig(
                    name=options.provider,
                    model=options.model or VISION_DEFAULT_MODELS.get(options.provider, ""),
                    base_url=options.base_url,
                    api_key=options.api_key,
                    timeout_s=options.request_timeout_s,
                    max_attempts=VISION_ATTEMPTS,
                )
            )
        except ProviderError as err:
            self.refused = err.message
            return
        if not hasattr(provider, "read_image"):
            self.refused = f"The {options.provider} provider cannot read images: choose a vision model."
            return
        self.provider = provider  # type: ignore[assignment]

    def engine(self) -> str:
        return f"{self.provider.name} {self.provider.model}" if self.provider else self.options.provider

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
        if self.provider is None or self.refused:
            out.reason = self.unavailable()
            return out
        started = time.perf_counter()
        jpeg, out.dpi = page_jpeg(page, self.options.vision_max_px)
        out.ms["render"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        timeout = self.options.page_limit_s
        try:
            text, _usage = self.loop.run_until_complete(
                asyncio.wait_for(self.provider.read_image(jpeg, PROMPT), timeout)
            )
        except TimeoutError:
            raise ProviderError(
                f"{self.engine()} did not read page {number} within {timeout:g} s.", timeout=True
            ) from None
        except ProviderError as err:
            if err.retryable or err.timeout:
                raise
            self.refused = err.message
            out.reason = self.unavailable()
            return out
        out.ms["recognize"] = (time.perf_counter() - started) * 1000
        out.text = text.strip()
        return out

    def close(self) -> None:
        try:
            if self.provider is not None:
                self.loop.run_until_complete(self.provider.aclose())
        finally:
            self.loop.close()
