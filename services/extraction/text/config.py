"""The text worker's limits, from the environment (`ATRIUM_EXTRACT_*`, `ATRIUM_OCR_*`), and its OCR options
per document (the Documents settings within those limits)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from contracts.documents import DocumentsSettingsStored
from services.extraction.ocr.reader import OcrOptions
from services.kit.media import max_image_megapixels

from .engine import Limits
from .pool import PoolLimits


def _env(name: str, default: str) -> str:
    return os.environ.get(f"ATRIUM_EXTRACT_{name}", default)


def ocr_limits_from_env() -> OcrOptions:
    """`ATRIUM_OCR_*`: the limits OCR runs under on this worker (resolution, pixel caps, time per page).
    What to OCR and with what (mode, languages, provider, pages per document) are Documents settings."""
    default = OcrOptions()

    def env(name: str, fallback: object) -> str:
        return os.environ.get(f"ATRIUM_OCR_{name}", str(fallback))

    return OcrOptions(
        dpi=int(env("DPI", default.dpi)),
        max_image_megapixels=max_image_megapixels(),
        max_render_megapixels=float(env("MAX_RENDER_MP", default.max_render_megapixels)),
        page_timeout_s=float(env("PAGE_TIMEOUT_S", default.page_timeout_s)),
    )


def ocr_options(settings: DocumentsSettingsStored, api_key: str, limits: OcrOptions) -> OcrOptions:
    """The OCR of the next document: the Documents settings within this worker's limits."""
    vision = settings.ocr_provider != "tesseract"
    return dataclasses.replace(
        limits,
        mode=settings.ocr_mode,
        languages=tuple(settings.ocr_languages),
        max_pages=settings.ocr_max_pages,
        provider=settings.ocr_provider,
        model=settings.ocr_model if vision else "",
        base_url=settings.ocr_base_url if vision else "",
        api_key=api_key if vision else "",
        request_timeout_s=settings.request_timeout_s,
    )


@dataclass(frozen=True)
class ExtractConfig:
    children: int = 1  # extraction child processes per worker (scale out with more workers)
    engine: str = "hybrid"  # or "pdfplumber": pdfplumber text and tables on every page
    limits: PoolLimits = field(default_factory=PoolLimits)
    max_mb: int = 2048  # a bigger original is refused (`too_large`) before it is fetched
    # The durable's server-side settings come from whichever replica created it first; a replica may
    # give up earlier (smaller max_deliver) but never later than that.
    max_deliver: int = 5
    ack_wait_s: float = 15.0
    # A root worker's parser children switch to this uid (and the same gid); -1 keeps them root.
    child_uid: int = 65534
    ocr: OcrOptions = field(default_factory=OcrOptions)  # the limits; settings fill in the rest per document

    @classmethod
    def from_env(cls) -> ExtractConfig:
        return cls(
            children=int(_env("CHILDREN", "1")),
            engine=_env("ENGINE", "hybrid"),
            limits=PoolLimits(
                doc_timeout_s=float(_env("DOC_TIMEOUT_S", "120")),
                memory_mb=int(_env("MEMORY_MB", "1536")),
                page=Limits(
                    max_pages=int(_env("MAX_PAGES", "2000")),
                    page_timeout_s=float(_env("PAGE_TIMEOUT_S", "15")),
                ),
            ),
            max_mb=int(_env("MAX_MB", "2048")),
            max_deliver=int(_env("MAX_DELIVER", "5")),
            child_uid=int(_env("CHILD_UID", "65534")),
            ocr=ocr_limits_from_env(),
        )
