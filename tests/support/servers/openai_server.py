"""An OpenAI-compatible server: ``POST /v1/chat/completions`` (SSE) and ``GET /v1/models``.

Each request takes the next scripted answer (or the default): a text reply, a tool call, an
HTTP error, or a hang (to exercise timeouts). Every request is recorded with its headers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import LocalServer


@dataclass
class Reply:
    text: str = ""
    tool_call: tuple[str, dict[str, Any]] | None = None
    status: int = 200
    hang_seconds: float = 0.0
    first_token_delay: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


Responder = Callable[[dict[str, Any]], Reply]


class OpenAIServer(LocalServer):
    def __init__(self, name: str = "openai", default: Reply | None = None) -> None:
        super().__init__()
        self.name = name
        self.default = default or Reply(text=f"Hello from {name}.")
        self.script: list[Reply] = []
        self.responder: Responder | None = None  # overrides the script when set
        self.requests: list[Recorded] = []
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, dict(request.headers)))
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    def _next(self, body: dict[str, Any]) -> Reply:
        if self.responder is not None:
            return self.responder(body)
        return self.script.pop(0) if self.script else self.default

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        reply = self._next(body)
        if reply.hang_seconds:
            await asyncio.sleep(reply.hang_seconds)
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": f"{self.name} scripted failure", "type": "server_error"}},
                status=reply.status,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        model = body.get("model", "m")

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if reply.tool_call is not None:
            name, args = reply.tool_call
            await send(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": f"call_{name}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)},
                        }
                    ],
                }
            )
            await send({}, "tool_calls")
        else:
            await send({"role": "assistant", "content": ""})
            for word in reply.text.split(" "):
                await send({"content": word + " " if word != reply.text.split(" ")[-1] else word})
            await send({}, "stop")
        usage = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        await resp.write(f"data: {json.dumps(usage)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
