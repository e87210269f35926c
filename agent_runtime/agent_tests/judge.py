"""The language model that judges a conversation against a case's rubric.

The judge answers with a JSON verdict and a one-sentence reason (the request holds its reply to
that schema). Anything else — no answer in time, an error, text that is not a verdict — fails
the case with what happened: a rubric is never passed by default.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import credential_env
from kubevox_api.voiceagenttest import VoiceAgentTestSpec
from livekit.agents import llm

from ..errors import ConfigError
from ..model_reply import VERDICT_SCHEMA, ask, json_object, json_schema_format
from ..providers import BuildContext, build_llm_endpoint

REPLY_FORMAT = json_schema_format("verdict", VERDICT_SCHEMA)
INSTRUCTIONS = (
    "You judge a conversation between a caller and a voice agent against a rubric. Read the "
    "transcript, decide whether the agent's side of it meets the rubric, and reply with one "
    'JSON object and nothing else: {"verdict": "pass" or "fail", "reason": "<one sentence>"}.'
)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def parse_verdict(text: str) -> Verdict:
    """The judge's verdict; a reply that is not one fails, quoting what the judge said."""
    data = json_object(text)
    verdict = data.get("verdict") if data is not None else None
    if data is None or verdict not in ("pass", "fail"):
        return Verdict(False, f"the judge gave no verdict: {text.strip()[:200]!r}")
    return Verdict(verdict == "pass", str(data.get("reason") or "").strip() or "(no reason)")


def transcript_text(transcript: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{who}: {text}" for who, text in transcript)


class Judge:
    def __init__(self, model: llm.LLM[Any], timeout: float) -> None:
        self._model = model
        self._timeout = timeout

    async def judge(self, rubric: str, transcript: Sequence[tuple[str, str]]) -> Verdict:
        ctx = llm.ChatContext()
        ctx.add_message(role="system", content=INSTRUCTIONS)
        ctx.add_message(
            role="user",
            content=f"Rubric:\n{rubric}\n\nTranscript:\n{transcript_text(transcript)}",
        )
        try:
            text = await asyncio.wait_for(ask(self._model, ctx, REPLY_FORMAT), self._timeout)
        except TimeoutError:
            return Verdict(False, f"the judge did not answer within {self._timeout:g} s")
        except Exception as e:  # the provider's own error, reported in the case's result
            return Verdict(False, f"the judge failed: {e!r}"[:300])
        return parse_verdict(text)


def build_judge(
    suite: VoiceAgentTestSpec,
    config: AgentRuntimeConfig,
    env: Mapping[str, str] = os.environ,
) -> Judge | None:
    """The suite's judge (None: no case has a rubric); its API key comes from
    ``KUBEVOX_JUDGE_API_KEY`` (or the provider's own variable), the agent's from its own."""
    if not any(case.rubric for case in suite.cases):
        return None
    if suite.judge is not None:
        endpoint, field, key_env = suite.judge, "spec.judge", credential_env("judge")
    else:
        endpoint, field, key_env = config.spec.llm, "spec.llm", credential_env("llm")
    if endpoint.provider == "local":
        raise ConfigError(
            f"{field}: provider local cannot judge a rubric (a 135M-parameter model);"
            " set spec.judge in the VoiceAgentTest"
        )
    ctx = BuildContext(language=config.spec.language)
    model = build_llm_endpoint(endpoint, field, key_env, ctx, env)
    return Judge(model, suite.judge_timeout_seconds)
