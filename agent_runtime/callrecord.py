"""Per-call bookkeeping: turn latencies into the histograms, and one JSON record at call end."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubevox_api import AgentRuntimeConfig, phrases_for
from kubevox_api.contract import POD_NAME_ENV
from livekit.agents import llm
from pydantic import BaseModel

from . import metrics
from .redaction import mask_phone_number, redact
from .sentiment import CallSentiment
from .usage import count as count_usage

log = logging.getLogger("kubevox.call")


CallerKind = Literal["web", "phone", "text"]
"""How the caller reached the agent: a browser (WebRTC), a phone line (LiveKit SIP), or text
(``kubevox-agent chat`` and ``test``)."""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def model_usage(usage: Iterable[BaseModel]) -> list[dict[str, Any]]:
    """livekit's per-model usage, each without its zero counters."""
    named = ("type", "provider", "model")
    return [{k: v for k, v in u.model_dump().items() if k in named or v} for u in usage]


def worker_name() -> str:
    """Who served the call: the pod's name (the operator sets POD_NAME), else the host's."""
    return os.environ.get(POD_NAME_ENV) or socket.gethostname()


@dataclass
class TurnLatency:
    end_of_utterance: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    e2e: float | None = None


@dataclass
class CallRecord:
    call_id: str
    room: str
    agent: str
    namespace: str
    log_transcripts: bool = False
    keep_transcript: bool = False
    """Keep the transcript for the call's analysis (``spec.analysis``), logged or not."""
    redact: frozenset[str] = frozenset()
    """The personal data masked in the transcript and the caller's number (``spec.redact``)."""
    config_hash: str | None = None
    """The configuration the call ran with (the agent's ``status.configHash`` at the time)."""
    caller: CallerKind = "web"
    caller_number: str | None = None
    """A phone caller's number, when the trunk gives it; logged only with transcripts (it is
    personal data, as the words are)."""
    worker: str = field(default_factory=worker_name)
    started_at: float = field(default_factory=time.time)
    outcome: str | None = None
    usage: list[dict[str, Any]] = field(default_factory=list)
    """What each provider's model consumed (livekit's per-model usage), set when the call
    closes: language-model tokens, speech-to-text audio seconds, text-to-speech characters."""
    turns: list[TurnLatency] = field(default_factory=list)
    apologies: tuple[str, ...] = ()
    """The agent's own phrases for a reply it could not give (its apology when every language
    model failed, its grounding guard's refusal): counted per configuration, a canary's
    ``maxApologyRate``."""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    sentiment: CallSentiment | None = None
    """The caller's turns scored (``spec.sentiment``), when the agent asks for it."""
    recording: dict[str, Any] | None = None
    """The recording's consent and object (``spec.recording``), once the consent is settled."""
    _pending_eou: float | None = None
    _record: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, config: AgentRuntimeConfig, call_id: str, room: str, config_hash: str, **extra: Any
    ) -> CallRecord:
        """The record of a call of the agent ``config`` describes."""
        phrases = phrases_for(config.spec.language, config.spec.phrases)
        record = cls(
            call_id=call_id,
            room=room,
            agent=config.name,
            namespace=config.namespace,
            log_transcripts=config.spec.log_transcripts,
            keep_transcript=config.spec.analysis is not None,
            redact=frozenset(config.spec.redact),
            config_hash=config_hash,
            apologies=(phrases.apology.strip(), phrases.guard_refusal.strip()),
            **extra,
        )
        if config.spec.sentiment is not None:
            record.sentiment = CallSentiment(config.spec.sentiment, record.labels, room)
        return record

    @property
    def labels(self) -> tuple[str, str, str]:
        """Every call metric's: the configuration too, so that a canary is judged alone."""
        return (self.agent, self.namespace, self.config_hash or "")

    def set_outcome(self, outcome: str) -> None:
        """The first decisive outcome wins (e.g. transferred, then the room closes)."""
        if self.outcome is None:
            self.outcome = outcome

    def on_message(self, msg: llm.ChatMessage) -> None:
        if msg.role not in ("user", "assistant"):
            return
        entry: dict[str, Any] | None = None
        if (self.log_transcripts or self.keep_transcript) and msg.text_content:
            entry = {"role": msg.role, "text": redact(msg.text_content, self.redact)}
            self.transcript.append(entry)
        if self.sentiment is not None:
            if msg.role == "user":
                self.sentiment.caller_said(msg.text_content or "", entry)
            else:
                self.sentiment.reply_spoken()
        m: Any = msg.metrics or {}
        if msg.role == "user":
            self._pending_eou = m.get("end_of_turn_delay")
            if self._pending_eou is not None:
                metrics.end_of_utterance.labels(*self.labels).observe(self._pending_eou)
            return
        turn = TurnLatency(
            end_of_utterance=self._pending_eou,
            llm_ttft=m.get("llm_node_ttft"),
            tts_ttfb=m.get("tts_node_ttfb"),
            e2e=m.get("e2e_latency"),
        )
        self._pending_eou = None
        self.turns.append(turn)
        metrics.turns_total.labels(*self.labels).inc()
        text = (msg.text_content or "").strip()
        if text and any(p in text for p in self.apologies):
            metrics.apologies_total.labels(*self.labels).inc()
        for value, hist in (
            (turn.llm_ttft, metrics.llm_ttft),
            (turn.tts_ttfb, metrics.tts_ttfb),
            (turn.e2e, metrics.e2e),
        ):
            if value is not None and value >= 0:
                hist.labels(*self.labels).observe(value)

    def started(self) -> dict[str, Any]:
        """What is known when the call starts (the ``call.started`` event's data)."""
        return {
            "call_id": self.call_id,
            "room": self.room,
            "agent": self.agent,
            "namespace": self.namespace,
            "worker": self.worker,
            "config_hash": self.config_hash,
            "caller": self.caller,
            "started_at": _iso(self.started_at),
        }

    def finish(self, default_outcome: str = "completed") -> dict[str, Any]:
        """Count the call and log its one record; idempotent (later calls return the same
        record: the one logged is the one sent)."""
        if self._record is not None:
            return self._record
        self.set_outcome(default_outcome)
        ended = time.time()
        record: dict[str, Any] = {
            "event": "call_ended",
            **self.started(),
            "ended_at": _iso(ended),
            "duration_seconds": round(ended - self.started_at, 3),
            "turns": len(self.turns),
            "outcome": self.outcome,
            "latencies": [
                {k: (round(v, 4) if v is not None else None) for k, v in vars(t).items()}
                for t in self.turns
            ],
            "usage": self.usage,
        }
        if self.sentiment is not None:
            record["sentiment"] = self.sentiment.summary()
        if self.recording is not None:
            record["recording"] = self.recording
        if self.log_transcripts:
            record["transcript"] = self.transcript
            if self.caller_number:
                number = self.caller_number
                masked = "phoneNumbers" in self.redact
                record["caller_number"] = mask_phone_number(number) if masked else number
        self._record = record
        metrics.calls_total.labels(*self.labels, self.outcome).inc()
        count_usage(self.agent, self.namespace, self.usage)
        log.info("call ended", extra={"call": record})
        return record
