"""The analysis of each call, as a step of the worker's delivery of the outbox: a consumer group
of its own (ANALYSIS_CONSUMER) that reads each ``call.ended`` entry, asks the language model,
and writes ``call.analyzed`` back to the outbox, for the sinks.

So the analysis is off the call's critical path (the call ended before its entry was read), and
as reliable as delivery: a worker drained or killed mid-analysis leaves the entry pending, and
another worker claims it. Each analysis is bounded by ``timeoutSeconds``; whatever goes wrong
with the model (an error, no answer in time, a reply that is no JSON object) is reported in the
event's ``error``: every analysed call gets its ``call.analyzed``, once (its id is derived from
the ``call.ended`` event's, so a repeat after a crash is the same event to a receiver).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import credential_env
from kubevox_api.voiceagent_analysis import AnalysisSpec
from livekit.agents import llm

from ..call_events import CallEventPublisher
from ..call_events.cloudevents import TYPE_PREFIX
from ..call_events.sinks import EventConsumer
from ..errors import ConfigError
from ..model_reply import ask, json_object
from ..providers import BuildContext, build_llm_endpoint
from .request import instructions, response_format, result, transcript_text

log = logging.getLogger("kubevox.analysis")

ANALYSIS_CONSUMER = "kubevox:analysis"
"""The analysis's consumer group on the outbox (no sink may be named so: a sink's name has no
colon)."""
RECORD_KEYS = ("call_id", "room", "agent", "namespace", "config_hash")
"""What ``call.analyzed`` repeats of the call's record, to be read on its own."""


class CallAnalyst:
    """Analyses one call's transcript with ``model``, as ``spec`` declares."""

    def __init__(self, spec: AnalysisSpec, model: llm.LLM[Any]) -> None:
        self.spec = spec
        self.model = model

    async def analyse(self, transcript: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The analysis (request.result), or ``error`` saying why there is none. Never
        raises, and returns within ``timeoutSeconds``."""
        if not transcript:
            return {"error": "nothing to analyse: the call has no transcript"}
        ctx = llm.ChatContext()
        ctx.add_message(role="system", content=instructions(self.spec))
        ctx.add_message(role="user", content=f"Transcript:\n{transcript_text(transcript)}")
        timeout = self.spec.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                text = await ask(self.model, ctx, response_format(self.spec))
        except TimeoutError:
            return {"error": f"the language model gave no analysis within {timeout:g} s"}
        except Exception as e:  # the provider's own error, reported in the event
            return {"error": f"the language model failed: {e!r}"[:300]}
        reply = json_object(text)
        if reply is None:
            return {"error": f"the language model's reply is no JSON object: {text[:200]!r}"}
        return result(self.spec, reply)


class AnalysisStep(EventConsumer):
    """``call.ended`` in, ``call.analyzed`` out; every other event passes."""

    def __init__(self, analyst: CallAnalyst, publisher: CallEventPublisher) -> None:
        super().__init__(ANALYSIS_CONSUMER)
        self.analyst = analyst
        self.publisher = publisher

    async def deliver(self, event: dict[str, Any]) -> None:
        await self.take(event, {})

    async def take(self, event: dict[str, Any], private: Mapping[str, Any]) -> None:
        if event.get("type") != f"{TYPE_PREFIX}call.ended":
            return
        data = event.get("data") or {}
        # The private transcript when the agent does not send transcripts, else the record's.
        transcript = private.get("transcript") or data.get("transcript") or []
        started = time.monotonic()
        analysis = await self.analyst.analyse(transcript)
        out = {k: data.get(k) for k in RECORD_KEYS} | {
            "model": self.analyst.model.model,
            "duration_seconds": round(time.monotonic() - started, 3),
            **analysis,
        }
        call_id = str(data.get("call_id") or event.get("subject") or "")
        level = logging.WARNING if "error" in analysis else logging.INFO
        log.log(level, "call analysed", extra={"call_id": call_id, "analysis": out})
        # Raises if the outbox is away: the entry stays pending and is analysed again.
        await self.publisher.publish(
            "call.analyzed", call_id, out, id_=f"{event.get('id')}-analyzed"
        )

    async def aclose(self) -> None:
        await self.publisher.aclose()


def analysis_model(config: AgentRuntimeConfig, env: Mapping[str, str] = os.environ) -> llm.LLM[Any]:
    """The model of ``spec.analysis``: its own ``llm``, else the agent's (its primary, at
    temperature 0 and with no cap on the reply's length, which is set for spoken replies)."""
    analysis = config.spec.analysis
    assert analysis is not None
    if analysis.llm is not None:
        endpoint, field, key_env = analysis.llm, "spec.analysis.llm", credential_env("analysis")
    else:
        update = {"temperature": 0.0, "max_tokens": None}
        endpoint, field, key_env = (
            config.spec.llm.model_copy(update=update),
            "spec.llm",
            credential_env("llm"),
        )
    if endpoint.provider == "local":
        raise ConfigError(
            f"{field}: provider local cannot analyse calls (a 135M-parameter model);"
            " set spec.analysis.llm"
        )
    return build_llm_endpoint(
        endpoint, field, key_env, BuildContext(language=config.spec.language), env
    )
