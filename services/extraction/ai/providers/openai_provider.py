"""Any OpenAI-compatible server (OpenAI, LM Studio, vLLM, llama.cpp) through the official SDK and a base URL,
with `response_format` carrying the fields JSON schema."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpcore2
import httpx2
import openai

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

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAICompatibleProvider:
    name = "openai_compatible"

    def __init__(self, config: ProviderConfig):
        self.config = config
        self.model = config.model or DEFAULT_MODEL
        self.budget_chars = DEFAULT_BUDGET_CHARS
        # Local servers take any key; the SDK insists on one.
        self.client = openai.AsyncOpenAI(
            api_key=config.api_key or "not-needed",
            base_url=config.base_url or None,
            timeout=config.timeout_s,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                transport=guarded_transport(config.allow_local_servers, httpx2, httpcore2)
            ),
        )

    async def _create(self, **kwargs: Any) -> Any:
        try:
            async with concurrency_limit(self.config):
                return await self.client.chat.completions.create(model=self.model, **kwargs)
        except openai.APITimeoutError:
            raise ProviderError(
                f"The model server did not answer within {self.config.timeout_s:g} s.", timeout=True
            ) from None
        except openai.APIStatusError as err:
            raise status_error(
                "The model server", err.status_code, _message(err), err.response.headers
            ) from None
        except openai.APIConnectionError as err:
            refused = policy_refusal(err)
            if refused:  # a base URL or redirect that leads to a refused address: trying again will not help
                raise ProviderError(refused, mask=False) from None
            raise ProviderError(
                f"Cannot reach the model server at {self.client.base_url}: {err}", retryable=True
            ) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError) as err:
            raise ProviderError(
                f"The model server answered something that is not a valid API response: {err}",
                summary="The model server answered something that is not a valid API response.",
            ) from None

    async def analyze(
        self, text: str, instructions: str, schema: dict[str, Any]
    ) -> tuple[dict[str, Any], Usage]:
        started = time.perf_counter()
        resp, tries = await with_retries(
            self.config,
            lambda: self._create(
                temperature=0,
                messages=[
                    {"role": "system", "content": system_prompt(instructions)},
                    {"role": "user", "content": text},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "document_fields", "schema": schema, "strict": False},
                },
            ),
        )
        usage = Usage(
            model=getattr(resp, "model", "") or self.model,
            tokens_in=resp.usage.prompt_tokens if resp.usage else None,
            tokens_out=resp.usage.completion_tokens if resp.usage else None,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        if not resp.choices:
            raise MalformedAnswer("The model server answered with no choices.")
        return parse_json_object(resp.choices[0].message.content or ""), usage

    async def read_image(self, jpeg: bytes, instructions: str) -> tuple[str, Usage]:
        """The text on a page image (vision OCR)."""
        started = time.perf_counter()
        url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        resp, tries = await with_retries(
            self.config,
            lambda: self._create(
                temperature=0,
                max_tokens=VISION_MAX_TOKENS,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": instructions},
                            {"type": "image_url", "image_url": {"url": url}},
                        ],
                    }
                ],
            ),
        )
        usage = Usage(
            model=getattr(resp, "model", "") or self.model,
            tokens_in=resp.usage.prompt_tokens if resp.usage else None,
            tokens_out=resp.usage.completion_tokens if resp.usage else None,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
        )
        if not resp.choices:
            raise ProviderError("The model server answered with no choices.")
        return resp.choices[0].message.content or "", usage

    async def ping(self) -> str:
        resp, _ = await with_retries(
            self.config, lambda: self._create(max_tokens=1, messages=[{"role": "user", "content": "ping"}])
        )
        return str(resp.model)

    async def aclose(self) -> None:
        await self.client.close()


def parse_json_object(content: str) -> dict[str, Any]:
    """The JSON object in a model's text answer (tolerating a ```json fence)."""
    s = content.strip()
    if s.startswith("```"):
        s = s.strip("`")
        s = s[4:] if s.lower().startswith("json") else s
    try:
        value = json.loads(s)
    except json.JSONDecodeError as err:
        raise MalformedAnswer(f"The answer is not valid JSON ({err.msg} at character {err.pos}).") from None
    if not isinstance(value, dict):
        raise MalformedAnswer("The answer is JSON but not an object.")
    return value


def _message(err: openai.APIStatusError) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    return str((inner or {}).get("message") or err.message)
