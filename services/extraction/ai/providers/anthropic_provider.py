"""Anthropic through the official SDK: structured output by forcing a tool whose input schema is the fields schema."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anthropic
import httpcore2
import httpx2

from .base import (
    DEFAULT_BUDGET_CHARS,
    VISION_MAX_TOKENS,
    MalformedAnswer,
    ProviderConfig,
    ProviderError,
    Usage,
    concurrency_limit,
    status_error,
    system_prompt,
    with_retries,
)
from .network import guarded_transport, policy_refusal

TOOL_NAME = "record_document_fields"
DEFAULT_MODEL = "claude-haiku-4-5"


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, config: ProviderConfig):
        if not config.api_key:
            raise ProviderError("Anthropic needs an API key: set it in the Documents settings.")
        self.config = config
        self.model = config.model or DEFAULT_MODEL
        self.budget_chars = DEFAULT_BUDGET_CHARS
        # Retries are ours (same policy for every provider, Retry-After honoured), so the SDK's are off.
        self.client = anthropic.AsyncAnthropic(
            api_key=config.api_key,
            base_url=config.base_url or None,
            timeout=config.timeout_s,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(
                transport=guarded_transport(config.allow_local_servers, httpx2, httpcore2)
            ),
        )

    async def _create(self, **kwargs: Any) -> Any:
        try:
            async with concurrency_limit(self.config):
                return await self.client.messages.create(model=self.model, **kwargs)
        except anthropic.APITimeoutError:
            raise ProviderError(
                f"Anthropic did not answer within {self.config.timeout_s:g} s.", timeout=True
            ) from None
        except anthropic.APIStatusError as err:
            raise status_error("Anthropic", err.status_code, _message(err), err.response.headers) from None
        except anthropic.APIConnectionError as err:
            refused = policy_refusal(err)
            if refused:  # a base URL or redirect that leads to a refused address: trying again will not help
                raise ProviderError(refused, mask=False) from None
            raise ProviderError(
                f"Cannot reach Anthropic at {self.client.base_url}: {err}", retryable=True
            ) from None
        except (anthropic.APIResponseValidationError, json.JSONDecodeError) as err:
            raise ProviderError(
                f"Anthropic answered something that is not a valid API response: {err}",
                summary="Anthropic answered something that is not a valid API response.",
            ) from None

    async def analyze(
        self, text: str, instructions: str, schema: dict[str, Any]
    ) -> tuple[dict[str, Any], Usage]:
        started = time.perf_counter()
        tool = {
            "name": TOOL_NAME,
            "description": "Record the fields found in the document.",
            "input_schema": schema,
        }
        resp, tries = await with_retries(
            self.config,
            lambda: self._create(
                max_tokens=2048,
                system=system_prompt(instructions),
                messages=[{"role": "user", "content": text}],
                tools=[tool],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            ),
        )
        usage = Usage(
            model=getattr(resp, "model", "") or self.model,
            tokens_in=getattr(resp.usage, "input_tokens", None),
            tokens_out=getattr(resp.usage, "output_tokens", None),
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        for block in resp.content:
            if getattr(block, "type", "") == "tool_use" and isinstance(block.input, dict):
                return block.input, usage
        raise MalformedAnswer("Anthropic answered without calling the fields tool.")

    async def read_image(self, jpeg: bytes, instructions: str) -> tuple[str, Usage]:
        """The text on a page image (vision OCR)."""
        started = time.perf_counter()
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(jpeg).decode()},
        }
        resp, tries = await with_retries(
            self.config,
            lambda: self._create(
                max_tokens=VISION_MAX_TOKENS,
                messages=[{"role": "user", "content": [image, {"type": "text", "text": instructions}]}],
            ),
        )
        usage = Usage(
            model=getattr(resp, "model", "") or self.model,
            tokens_in=getattr(resp.usage, "input_tokens", None),
            tokens_out=getattr(resp.usage, "output_tokens", None),
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        return "".join(
            getattr(b, "text", "") for b in resp.content if getattr(b, "type", "") == "text"
        ), usage

    async def ping(self) -> str:
        resp, _ = await with_retries(
            self.config, lambda: self._create(max_tokens=1, messages=[{"role": "user", "content": "ping"}])
        )
        return str(resp.model)

    async def aclose(self) -> None:
        await self.client.close()


def _message(err: anthropic.APIStatusError) -> str:
    body: dict[str, Any] = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error")
    return str((inner.get("message") if isinstance(inner, dict) else None) or err.message)
