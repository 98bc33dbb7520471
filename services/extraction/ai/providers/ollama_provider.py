"""Ollama through the official client: `format` carries the fields JSON schema (structured outputs)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import ollama

from .base import (
    VISION_MAX_TOKENS,
    ProviderConfig,
    ProviderError,
    Usage,
    concurrency_limit,
    status_error,
    system_prompt,
    with_retries,
)
from .network import guarded_transport, policy_refusal
from .openai_provider import parse_json_object

DEFAULT_MODEL = "llama3.1:8b"
DEFAULT_URL = "http://127.0.0.1:11434"
CONTEXT_TOKENS = 8192


class OllamaProvider:
    name = "ollama"

    def __init__(self, config: ProviderConfig):
        self.config = config
        self.model = config.model or DEFAULT_MODEL
        self.budget_chars = CONTEXT_TOKENS * 3  # ~4 chars a token, leaving room for the prompt and the answer
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else None
        self.host = config.base_url or DEFAULT_URL
        self.client = ollama.AsyncClient(
            host=self.host,
            timeout=config.timeout_s,
            headers=headers,
            transport=guarded_transport(config.allow_local_servers),
        )

    async def _chat(self, **kwargs: Any) -> Any:
        try:
            async with concurrency_limit(self.config):
                return await self.client.chat(model=self.model, stream=False, **kwargs)
        except ollama.ResponseError as err:
            raise status_error("Ollama", err.status_code, err.error) from None
        except httpx.TimeoutException:
            raise ProviderError(
                f"Ollama did not answer within {self.config.timeout_s:g} s.", timeout=True
            ) from None
        except (httpx.TransportError, ConnectionError) as err:
            refused = policy_refusal(err)
            if refused:  # a base URL or redirect that leads to a refused address: trying again will not help
                raise ProviderError(refused, mask=False) from None
            raise ProviderError(f"Cannot reach Ollama at {self.host}: {err}", retryable=True) from None
        except ValueError as err:  # a body that is not JSON, or not a chat response
            raise ProviderError(
                f"Ollama answered something that is not a valid API response: {err}",
                summary="Ollama answered something that is not a valid API response.",
            ) from None

    async def analyze(
        self, text: str, instructions: str, schema: dict[str, Any]
    ) -> tuple[dict[str, Any], Usage]:
        started = time.perf_counter()
        resp, tries = await with_retries(
            self.config,
            lambda: self._chat(
                messages=[
                    {"role": "system", "content": system_prompt(instructions)},
                    {"role": "user", "content": text},
                ],
                format=schema,
                options={"temperature": 0, "num_ctx": CONTEXT_TOKENS},
            ),
        )
        usage = Usage(
            model=resp.model or self.model,
            tokens_in=resp.prompt_eval_count,
            tokens_out=resp.eval_count,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        return parse_json_object(resp.message.content or ""), usage

    async def read_image(self, jpeg: bytes, instructions: str) -> tuple[str, Usage]:
        """The text on a page image (vision OCR)."""
        started = time.perf_counter()
        resp, tries = await with_retries(
            self.config,
            lambda: self._chat(
                messages=[{"role": "user", "content": instructions, "images": [jpeg]}],
                options={"temperature": 0, "num_predict": VISION_MAX_TOKENS},
            ),
        )
        usage = Usage(
            model=resp.model or self.model,
            tokens_in=resp.prompt_eval_count,
            tokens_out=resp.eval_count,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        return resp.message.content or "", usage

    async def ping(self) -> str:
        resp, _ = await with_retries(
            self.config,
            lambda: self._chat(messages=[{"role": "user", "content": "ping"}], options={"num_predict": 1}),
        )
        return str(resp.model or self.model)

    async def aclose(self) -> None:
        await self.client.close()
