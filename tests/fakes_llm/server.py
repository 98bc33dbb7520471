"""A local HTTP server that speaks the three provider APIs the AI worker uses, for tests.

It is a real server on a free port (uvicorn + FastAPI), reached by the real client libraries:
Anthropic `POST /v1/messages` (tool use), Ollama `POST /api/chat` (`format` schema) and OpenAI
`POST /v1/chat/completions` (`response_format` json_schema). Its "model" reads the document with
the builtin rules, so answers depend on the input. A test scripts the next answers with
`queue(...)`: "ok", "429" (with Retry-After), "500", "slow" (longer than the client's timeout),
"not_json" (the model's answer is not JSON), "wrong_fields" (JSON that breaks the schema) and
"broken_body" (HTTP 200 whose body is not JSON). Every request is recorded for assertions.

A request carrying an image (vision OCR: Anthropic's `image` block, OpenAI's `image_url` data URL,
Ollama's `images`) is answered with the image's text as Tesseract reads it, so the answer depends on the
picture sent; `images` keeps each decoded image for assertions (format, size).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from infra.embedded import free_port
from services.extraction.ai.providers.builtin import extract

WRONG_FIELDS = {"document_type": "spaceship", "total_amount": "a lot", "colour": "red"}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLM:
    api_key: str = ""  # when set, requests must carry it (x-api-key / Bearer)
    model: str = "fake-model-1"
    slow_s: float = 5.0
    retry_after_s: int = 1
    script: deque[str] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  # PIL images received for vision OCR
    base_url: str = ""
    port: int = 0  # kept across a stop and start: the provider comes back where it was
    _server: Any = None
    _task: Any = None

    def queue(self, *behaviours: str) -> FakeLLM:
        self.script.extend(behaviours)
        return self

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    # ---- life cycle ------------------------------------------------------------------------------
    async def start(self) -> FakeLLM:
        self.port = port = self.port or free_port()
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
            await self._task

    # ---- the APIs --------------------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/messages")
        async def anthropic_messages(request: Request) -> Response:
            body = await self._record(request)
            # Anthropic accepts the key as `x-api-key` or (newer SDKs) as a bearer token.
            if self.api_key and self.api_key not in (
                request.headers.get("x-api-key"),
                request.headers.get("authorization", "")[7:],
            ):
                return _anthropic_error(401, "authentication_error", "invalid x-api-key")
            analysis = bool(body.get("tools"))
            if analysis and body.get("tool_choice", {}).get("type") != "tool":
                return _anthropic_error(
                    400, "invalid_request_error", "this fake expects a forced tool_choice"
                )
            behaviour = await self._next(analysis)
            if behaviour in ("429", "500"):
                kind = "rate_limit_error" if behaviour == "429" else "api_error"
                return _anthropic_error(
                    int(behaviour), kind, f"scripted {behaviour}", self._retry_headers(behaviour)
                )
            if behaviour == "broken_body":
                return PlainTextResponse("<html>gateway hiccup</html>", media_type="application/json")
            text = _text_of(body["messages"][-1]["content"])
            picture = _image_of(body["messages"][-1]["content"])
            if picture is not None:
                content: list[dict[str, Any]] = [{"type": "text", "text": await self._read(picture)}]
            elif not analysis:
                content = [{"type": "text", "text": "pong"}]
            elif behaviour == "not_json":
                content = [{"type": "text", "text": "Sure! The invoice total is probably 12 euros."}]
            else:
                tool = body["tools"][0]
                answer = WRONG_FIELDS if behaviour == "wrong_fields" else extract(text)
                content = [
                    {
                        "type": "tool_use",
                        "id": f"toolu_{uuid.uuid4().hex[:12]}",
                        "name": tool["name"],
                        "input": answer,
                    }
                ]
            return JSONResponse(
                {
                    "id": f"msg_{uuid.uuid4().hex[:12]}",
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": content,
                    "stop_reason": "tool_use" if analysis else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": _tokens(text, body.get("system", "")), "output_tokens": 42},
                }
            )

        @app.post("/v1/chat/completions")
        async def openai_chat(request: Request) -> Response:
            body = await self._record(request)
            if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
                # Like OpenAI, echo the rejected key: the client must not pass it on.
                sent = request.headers.get("authorization", "")[7:]
                return _openai_error(401, "invalid_api_key", f"Incorrect API key provided: {sent}.")
            analysis = "response_format" in body
            if analysis and body["response_format"].get("type") != "json_schema":
                return _openai_error(
                    400, "invalid_request", "this fake expects a json_schema response_format"
                )
            behaviour = await self._next(analysis)
            if behaviour in ("429", "500"):
                return _openai_error(
                    int(behaviour), "scripted", f"scripted {behaviour}", self._retry_headers(behaviour)
                )
            if behaviour == "broken_body":
                return PlainTextResponse('{"id": "chatcmpl-1", "choi', media_type="application/json")
            text = _text_of(body["messages"][-1]["content"])
            picture = _image_of(body["messages"][-1]["content"])
            content = (
                await self._read(picture) if picture is not None else self._content(behaviour, text, analysis)
            )
            prompt_tokens = _tokens(*(str(m.get("content", "")) for m in body["messages"]))
            return JSONResponse(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": 42,
                        "total_tokens": prompt_tokens + 42,
                    },
                }
            )

        @app.post("/api/chat")
        async def ollama_chat(request: Request) -> Response:
            body = await self._record(request)
            if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            analysis = "format" in body
            if analysis and not isinstance(body["format"], dict):
                return JSONResponse({"error": "this fake expects a JSON schema in format"}, status_code=400)
            behaviour = await self._next(analysis)
            if behaviour in ("429", "500"):
                return JSONResponse(
                    {"error": f"scripted {behaviour}"},
                    status_code=int(behaviour),
                    headers=self._retry_headers(behaviour),
                )
            if behaviour == "broken_body":
                return PlainTextResponse("not json at all", media_type="application/json")
            text = _text_of(body["messages"][-1]["content"])
            images = body["messages"][-1].get("images") or []
            answer = (
                await self._read(_decode(images[0])) if images else self._content(behaviour, text, analysis)
            )
            return JSONResponse(
                {
                    "model": body.get("model") or self.model,
                    "created_at": "2024-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": answer},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": _tokens(*(str(m.get("content", "")) for m in body["messages"])),
                    "eval_count": 42,
                }
            )

        return app

    # ---- helpers ---------------------------------------------------------------------------------
    async def _record(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append(Seen(request.url.path, dict(request.headers), body))
        return body

    async def _next(self, analysis: bool) -> str:
        behaviour = self.script.popleft() if self.script else "ok"
        if behaviour == "slow":
            await asyncio.sleep(self.slow_s)
        return behaviour

    async def _read(self, picture: Any) -> str:
        """The vision "model": Tesseract on the picture as it arrived."""
        self.images.append(picture)
        return await asyncio.to_thread(_tesseract, picture)

    def _retry_headers(self, behaviour: str) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_s)} if behaviour == "429" else {}

    def _content(self, behaviour: str, text: str, analysis: bool) -> str:
        if not analysis:
            return "pong"
        if behaviour == "not_json":
            return '{"document_type": "invoice", "total_amount": 12,'  # cut off mid-object
        return json.dumps(WRONG_FIELDS if behaviour == "wrong_fields" else extract(text))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _decode(data: str) -> Any:
    from PIL import Image

    if data.startswith("data:"):
        data = data.split(",", 1)[1]
    picture = Image.open(io.BytesIO(base64.b64decode(data)))
    picture.load()
    return picture


def _image_of(content: Any) -> Any:
    """The picture in an Anthropic or OpenAI message's content blocks, decoded (None when there is none)."""
    if isinstance(content, str):
        return None
    for part in content:
        if part.get("type") == "image" and part.get("source", {}).get("type") == "base64":
            return _decode(part["source"]["data"])
        if part.get("type") == "image_url":
            return _decode(part["image_url"]["url"])
    return None


def _tesseract(picture: Any) -> str:
    import tesserocr

    from services.extraction.ocr.tessdata import prepare

    data = prepare(("eng",))
    return str(tesserocr.image_to_text(picture.convert("L"), lang="eng", path=data.path)).strip()


def _tokens(*texts: str) -> int:
    return max(1, sum(len(t) for t in texts) // 4)


def _anthropic_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def _openai_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": code, "code": code}}, status_code=status, headers=headers
    )
