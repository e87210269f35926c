"""Cartesia's ``/tts/websocket``: records each request (query, headers, JSON messages) and
answers every transcript chunk with base64 PCM of the requested sample rate, then ``done``.

``first_byte_delay`` (benchmarks) makes it a provider of fixed, known latency: the first audio
of each context is sent that many seconds after its first transcript arrived."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
from typing import Any, Literal

import aiohttp
from aiohttp import web

from .base import LocalServer


def tone(sample_rate: int, seconds: float, freq: float = 220.0) -> bytes:
    n = int(sample_rate * seconds)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * freq * i / sample_rate)) for i in range(n))
    )


class CartesiaServer(LocalServer):
    def __init__(
        self, first_byte_delay: float = 0.0, fail: Literal["error", "hang"] | None = None
    ) -> None:
        super().__init__()
        self.first_byte_delay = first_byte_delay
        self.fail = fail
        """``error``: answer every transcript with Cartesia's error message; ``hang``: never
        answer (a provider that accepted the connection and went silent)."""
        self.connections: list[dict[str, Any]] = []
        self.app.router.add_get("/tts/websocket", self._ws)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for c in self.connections for m in c["messages"]]

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn: dict[str, Any] = {
            "query": dict(request.query),
            "headers": dict(request.headers),
            "messages": [],
        }
        self.connections.append(conn)
        first_seen: dict[str, float] = {}  # context -> arrival of its first transcript
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            conn["messages"].append(data)
            ctx = data.get("context_id")
            if data.get("cancel"):
                continue
            if self.fail == "hang":
                continue
            if self.fail == "error":
                await ws.send_str(
                    json.dumps({"type": "error", "context_id": ctx, "error": "scripted failure"})
                )
                continue
            rate = int(data.get("output_format", {}).get("sample_rate", 24000))
            if data.get("transcript", "").strip():
                if self.first_byte_delay and ctx not in first_seen:
                    first_seen[ctx] = time.monotonic()
                    await asyncio.sleep(self.first_byte_delay)
                pcm = tone(rate, 0.2)
                await ws.send_str(
                    json.dumps(
                        {
                            "type": "chunk",
                            "context_id": ctx,
                            "data": base64.b64encode(pcm).decode(),
                            "done": False,
                        }
                    )
                )
            if data.get("continue") is False:
                await ws.send_str(json.dumps({"type": "done", "context_id": ctx, "done": True}))
        return ws
