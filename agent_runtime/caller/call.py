"""One simulated call: a LiveKit participant that dispatches an agent into a new room, speaks
its turns, listens to the agent's audio track and measures voice-to-voice latency on the audio.

Latency of a turn = first received audio frame of the reply that carries speech minus the moment the
last sample of the caller's utterance was played out by its audio source. Both instants are
taken on this process's monotonic clock, on the audio itself, so they include everything a
real caller waits for: media transport both ways, the agent's endpointing, STT, LLM and TTS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import api, rtc

from .audio import FRAME_MS, Samples, Utterance, is_speech, transcribe

PUBLISH_RATE = 48000
LISTEN_RATE = 16000
AGENT_STATE = "lk.agent.state"


@dataclass(frozen=True)
class CallOptions:
    url: str
    api_key: str
    api_secret: str
    agent_name: str
    room_prefix: str = "kubevox-call-"
    room: str | None = None
    """The room's name (a canary's share of calls is chosen by it); None: room_prefix and a
    random part."""
    greeting_timeout: float = 30.0
    """How long to wait for the agent to join and greet (workers may be loading models)."""
    reply_timeout: float = 30.0
    """How long to wait for the first audio of a reply."""
    end_of_reply_silence: float = 1.5
    """Silence that ends a reply (shorter when the agent reports it is listening again)."""
    metadata: dict[str, str] = field(default_factory=dict)
    grant: tuple[str, str] | None = None
    """A room and a token to join it with, made elsewhere (as a web gateway makes them for a
    browser, the agent dispatched by the token): the call neither creates nor dispatches."""


@dataclass
class TurnResult:
    said: str
    heard: str = ""
    latency_ms: float | None = None
    """End of the caller's speech → first reply audio, or None when no reply came."""
    reply_seconds: float = 0.0


@dataclass
class CallResult:
    room: str
    greeting: str | None = None
    turns: list[TurnResult] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "greeting": self.greeting,
            "turns": [t.__dict__ for t in self.turns],
            "error": self.error,
        }


@dataclass
class _Heard:
    """Audio received from the agent, 10 ms frames with their arrival time."""

    times: list[float] = field(default_factory=list)
    frames: list[Samples] = field(default_factory=list)
    speech: list[bool] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, t: float, samples: Samples) -> None:
        self.times.append(t)
        self.frames.append(samples)
        self.speech.append(is_speech(samples))
        self.changed.set()

    def first_speech_after(self, t: float, start: int = 0) -> int | None:
        for i in range(start, len(self.times)):
            if self.times[i] > t and self.speech[i]:
                return i
        return None

    def last_speech(self) -> int | None:
        for i in range(len(self.speech) - 1, -1, -1):
            if self.speech[i]:
                return i
        return None


class SimulatedCall:
    def __init__(self, options: CallOptions, index: int = 0) -> None:
        self.options = options
        self.room_name = (
            options.grant[0]
            if options.grant
            else options.room or f"{options.room_prefix}{uuid.uuid4().hex[:8]}-{index}"
        )
        self.identity = f"caller-{index}"
        self.heard = _Heard()
        self._to_say: asyncio.Queue[tuple[Utterance, asyncio.Future[float]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._agent: rtc.RemoteParticipant | None = None
        self._listening: asyncio.Task[None] | None = None
        self.result = CallResult(room=self.room_name)
        self.events: list[str] = []
        """What happened to the connection and who came and went, with monotonic times: when a
        call moves between workers, this says whether the caller's connection broke first."""

    # --- set-up --------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        http_url = self.options.url.replace("ws://", "http://").replace("wss://", "https://")
        async with api.LiveKitAPI(http_url, self.options.api_key, self.options.api_secret) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=self.room_name, empty_timeout=60))
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self.options.agent_name,
                    room=self.room_name,
                    metadata=json.dumps(self.options.metadata),
                )
            )

    def _token(self) -> str:
        if self.options.grant is not None:
            return self.options.grant[1]
        return (
            api.AccessToken(self.options.api_key, self.options.api_secret)
            .with_identity(self.identity)
            .with_grants(api.VideoGrants(room_join=True, room=self.room_name))
            .to_jwt()
        )

    async def _connect(self) -> None:
        # Created here, not in __init__: both bind to the event loop that is running now.
        self.room = rtc.Room()
        self.source = rtc.AudioSource(PUBLISH_RATE, 1, queue_size_ms=50)

        @self.room.on("track_subscribed")
        def _on_track(
            track: rtc.Track, _pub: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant
        ) -> None:
            # A caller hears the agent's latest audio track: an agent handed the call again after
            # the first one left, or the same one after a reconnection. One at a time, so that
            # no frame is heard twice.
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                self._agent = who
                if self._listening is not None:
                    self._listening.cancel()
                self._listening = asyncio.create_task(self._listen(track))
                self._tasks.append(self._listening)

        def note(what: str) -> None:
            self.events.append(f"{time.monotonic():.1f} {what}")

        self.room.on("reconnecting", lambda: note("connection lost, reconnecting"))
        self.room.on("reconnected", lambda: note("reconnected"))
        self.room.on("disconnected", lambda reason: note(f"disconnected: {reason}"))
        self.room.on("participant_connected", lambda p: note(f"{p.identity} joined"))
        self.room.on("participant_disconnected", lambda p: note(f"{p.identity} left"))

        await self.room.connect(self.options.url, self._token())
        track = rtc.LocalAudioTrack.create_audio_track("caller-microphone", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._microphone()))

    # --- audio -----------------------------------------------------------------------------

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(
            track, sample_rate=LISTEN_RATE, num_channels=1, frame_size_ms=FRAME_MS
        )
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            self.heard.add(time.monotonic(), samples)

    async def _microphone(self) -> None:
        """Speak queued utterances, silence otherwise, in real time (the agent's VAD needs
        to hear the silence that ends a turn)."""
        frame_samples = PUBLISH_RATE * FRAME_MS // 1000
        silence = rtc.AudioFrame.create(PUBLISH_RATE, 1, frame_samples)
        while True:
            try:
                utterance, spoken = self._to_say.get_nowait()
            except asyncio.QueueEmpty:
                await self.source.capture_frame(silence)
                continue
            pcm = _resample(utterance.samples, utterance.sample_rate, PUBLISH_RATE)
            for start in range(0, len(pcm), frame_samples):
                chunk = pcm[start : start + frame_samples]
                frame = rtc.AudioFrame(chunk.tobytes(), PUBLISH_RATE, 1, len(chunk))
                await self.source.capture_frame(frame)
            # The last sample leaves the source once the queue has played out.
            spoken.set_result(time.monotonic() + self.source.queued_duration)

    async def say(self, utterance: Utterance) -> float:
        """Speak ``utterance``; returns the monotonic time its last sample was played."""
        spoken: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self._to_say.put((utterance, spoken))
        return await spoken

    def _agent_listening(self) -> bool:
        state = self._agent.attributes.get(AGENT_STATE) if self._agent else None
        return state in ("listening", "idle")

    async def _reply_after(self, t: float, within: float) -> tuple[int, int] | None:
        """Frames [onset, end] of the agent's first reply starting after ``t``."""
        deadline = time.monotonic() + within
        onset = None
        while onset is None:
            onset = self.heard.first_speech_after(t)
            if onset is None:
                if time.monotonic() > deadline:
                    return None
                await _wait(self.heard.changed, 0.05)
        while True:
            last = self.heard.last_speech()
            assert last is not None
            quiet = time.monotonic() - self.heard.times[last]
            if quiet >= self.options.end_of_reply_silence or (
                quiet >= 0.6 and self._agent_listening()
            ):
                return onset, last
            await asyncio.sleep(0.05)

    async def _heard_text(self, onset: int, end: int) -> str:
        samples = np.concatenate(self.heard.frames[onset : end + 1])
        return await transcribe(samples, LISTEN_RATE)

    # --- the call --------------------------------------------------------------------------

    async def start(self) -> CallResult:
        """Dispatch the agent, join the room, and listen to the greeting (if any)."""
        self.result = CallResult(room=self.room_name)
        if self.options.grant is None:
            await self._dispatch()
        await self._connect()
        greeting = await self._reply_after(time.monotonic(), self.options.greeting_timeout)
        if greeting is not None:
            self.result.greeting = await self._heard_text(*greeting)
        return self.result

    async def turn(self, utterance: Utterance) -> TurnResult:
        """Say ``utterance`` and wait for the agent's reply."""
        turn = TurnResult(said=utterance.text)
        self.result.turns.append(turn)
        end_of_speech = await self.say(utterance)
        reply = await self._reply_after(end_of_speech, self.options.reply_timeout)
        if reply is not None:
            onset, end = reply
            turn.latency_ms = round((self.heard.times[onset] - end_of_speech) * 1000, 1)
            turn.reply_seconds = round(self.heard.times[end] - self.heard.times[onset], 2)
            turn.heard = await self._heard_text(onset, end)
        return turn

    async def hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if hasattr(self, "room"):
            await self.room.disconnect()

    async def run(self, utterances: list[Utterance]) -> CallResult:
        """The whole call: greeting, every turn, hang up. Errors are reported, not raised, so
        that N calls can run at once."""
        self.result = CallResult(room=self.room_name)
        try:
            await self.start()
            for utterance in utterances:
                await self.turn(utterance)
        except Exception as e:
            self.result.error = f"{type(e).__name__}: {e}"
        finally:
            await self.hang_up()
        return self.result


async def _wait(event: asyncio.Event, at_most: float) -> None:
    event.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), at_most)


def _resample(samples: Samples, rate: int, target: int) -> Samples:
    if rate == target:
        return samples
    positions = np.arange(0, len(samples), rate / target)
    resampled: Samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)
    return resampled


async def run_calls(
    options: CallOptions, utterances: list[Utterance], calls: int
) -> list[CallResult]:
    """``calls`` simultaneous calls, each saying the same turns."""
    return list(
        await asyncio.gather(*(SimulatedCall(options, i).run(utterances) for i in range(calls)))
    )
