"""Deepgram's streaming ``/v1/listen`` websocket: records the query and headers, counts the
audio it receives, and answers with a scripted final transcript once audio stops or on
``Finalize``."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from .base import LocalServer


class DeepgramServer(LocalServer):
    def __init__(self, transcript: str = "hello there") -> None:
        super().__init__()
        self.transcript = transcript
        self.connections: list[dict[str, Any]] = []
        self.app.router.add_get("/v1/listen", self._listen)

    async def _listen(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn: dict[str, Any] = {
            "query": dict(request.query),
            "headers": dict(request.headers),
            "audio_bytes": 0,
            "control": [],
        }
        self.connections.append(conn)
        request_id = uuid.uuid4().hex
        sent = False

        async def send_final() -> None:
            nonlocal sent
            if sent or conn["audio_bytes"] == 0:
                return
            sent = True
            await ws.send_str(json.dumps({"type": "SpeechStarted", "channel": [0], "timestamp": 0}))
            words = [
                {
                    "word": w,
                    "punctuated_word": w,
                    "start": i * 0.3,
                    "end": i * 0.3 + 0.25,
                    "confidence": 0.99,
                }
                for i, w in enumerate(self.transcript.split())
            ]
            await ws.send_str(
                json.dumps(
                    {
                        "type": "Results",
                        "is_final": True,
                        "speech_final": True,
                        "channel": {
                            "alternatives": [
                                {"transcript": self.transcript, "confidence": 0.99, "words": words}
                            ]
                        },
                        "metadata": {"request_id": request_id},
                        "start": 0.0,
                        "duration": 1.0,
                    }
                )
            )

        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                conn["audio_bytes"] += len(msg.data)
                # ~1 s of 16 kHz int16 audio is enough for the scripted utterance.
                if conn["audio_bytes"] >= 32000:
                    await send_final()
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                conn["control"].append(data.get("type"))
                if data.get("type") == "Finalize":
                    await send_final()
                elif data.get("type") == "CloseStream":
                    await send_final()
                    await asyncio.sleep(0.05)
                    await ws.close()
        return ws
