"""Deepgram's streaming ``/v1/listen`` websocket: records the query and headers, counts the
audio it receives, and answers with a scripted final transcript once audio stops or on
``Finalize``.

With ``final_delay`` set (benchmarks), it behaves like a provider of fixed, known latency
instead: it finds the caller's speech in the audio by its energy, and sends one final
transcript per utterance exactly ``final_delay`` seconds after the last chunk that carried
speech arrived (``Finalize`` then does not hurry it). Transcripts are taken in turn from
``transcripts`` (shared by all connections) when given."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from .base import LocalServer


class DeepgramServer(LocalServer):
    def __init__(
        self,
        transcript: str = "hello there",
        *,
        final_delay: float | None = None,
        transcripts: list[str] | None = None,
        speech_rms: float = 300.0,
        end_silence: float = 0.1,
    ) -> None:
        super().__init__()
        self.transcript = transcript
        self.final_delay = final_delay
        """Seconds from the end of speech to the final transcript (None: the test behaviour)."""
        self.transcripts = transcripts
        self.speech_rms = speech_rms
        """RMS (int16) above which a received chunk counts as speech."""
        self.end_silence = end_silence
        """Silence that tells the utterance is over (Deepgram's own endpointing)."""
        self.finals_sent = 0
        self.connections: list[dict[str, Any]] = []
        self.app.router.add_get("/v1/listen", self._listen)

    def _next_transcript(self) -> str:
        if not self.transcripts:
            return self.transcript
        text = self.transcripts[self.finals_sent % len(self.transcripts)]
        self.finals_sent += 1
        return text

    async def _listen(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if self.final_delay is not None:
            return await self._listen_timed(request, ws, self.final_delay)
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
            words = self.transcript.split()
            times = [(i * 0.3, i * 0.3 + 0.25) for i in range(len(words))]
            await ws.send_str(_final_result(self.transcript, times, request_id, 0.0, 1.0))

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

    async def _listen_timed(
        self, request: web.Request, ws: web.WebSocketResponse, delay: float
    ) -> web.WebSocketResponse:
        conn: dict[str, Any] = {
            "query": dict(request.query),
            "headers": dict(request.headers),
            "audio_bytes": 0,
            "control": [],
            "finals": [],
        }
        self.connections.append(conn)
        rate = int(request.query.get("sample_rate", "16000"))
        request_id = uuid.uuid4().hex
        speaking = False
        speech_start = 0.0  # audio seconds
        last_speech_at = 0.0  # monotonic arrival of the last chunk with speech
        last_speech_end = 0.0  # audio seconds
        pending: asyncio.Task[None] | None = None

        async def final(at: float, start: float, end: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            text = self._next_transcript()
            words = text.split()
            step = (end - start) / max(len(words), 1)
            times = [(start + i * step, start + (i + 1) * step) for i in range(len(words))]
            await ws.send_str(_final_result(text, times, request_id, start, end - start))
            conn["finals"].append((time.monotonic() - at + delay, text))

        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                now = time.monotonic()
                pcm = np.frombuffer(msg.data, dtype=np.int16)
                conn["audio_bytes"] += len(msg.data)
                audio_s = conn["audio_bytes"] / 2 / rate
                loud = (
                    len(pcm) > 0
                    and float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) >= self.speech_rms
                )
                if loud:
                    if not speaking:
                        speaking = True
                        speech_start = audio_s - len(pcm) / rate
                        await ws.send_str(
                            json.dumps(
                                {"type": "SpeechStarted", "channel": [0], "timestamp": speech_start}
                            )
                        )
                    last_speech_at, last_speech_end = now, audio_s
                elif speaking and now - last_speech_at >= self.end_silence:
                    speaking = False
                    pending = asyncio.create_task(
                        final(last_speech_at + delay, speech_start, last_speech_end)
                    )
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                conn["control"].append(data.get("type"))
                if data.get("type") == "CloseStream":
                    await ws.close()
        if pending is not None:
            pending.cancel()
        return ws


def _final_result(
    text: str, times: list[tuple[float, float]], request_id: str, start: float, duration: float
) -> str:
    """Deepgram's final ``Results`` message for ``text``, its words timed by ``times``."""
    words = [
        {"word": w, "punctuated_word": w, "start": a, "end": b, "confidence": 0.99}
        for w, (a, b) in zip(text.split(), times, strict=True)
    ]
    return json.dumps(
        {
            "type": "Results",
            "is_final": True,
            "speech_final": True,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.99, "words": words}]},
            "metadata": {"request_id": request_id},
            "start": start,
            "duration": duration,
        }
    )
