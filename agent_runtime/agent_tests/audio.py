"""Conversation tests over real calls: ``kubevox-agent test --audio``.

Each case is a call through LiveKit to the agent as it is deployed: the simulated caller of
``kubevox-agent call`` speaks the turns with the offline voice and transcribes what it hears.
Only what a caller can observe is checked — the words heard, the refusal, the voice-to-voice
latency and the rubric; ``groundedIn``, ``calls`` and ``notCalls`` are the agent's internals,
checked by the text run, and listed as not checked here.
"""

from __future__ import annotations

from kubevox_api.voiceagenttest import Expectations, TestCase, VoiceAgentTestSpec

from ..caller import CallOptions, SimulatedCall
from ..caller.audio import synthesize
from .expectations import Judges, ObservedTurn, missed
from .judge import Judge
from .runner import CaseResult, Runner, TurnResult

NOT_AUDIBLE = {"grounded_in": "groundedIn", "calls": "calls", "not_calls": "notCalls"}
"""The expectations a caller cannot observe (field name: its name in the spec)."""


def inaudible(expect: Expectations) -> list[str]:
    """The expectations of ``expect`` an audio run leaves unchecked."""
    return [name for field, name in NOT_AUDIBLE.items() if getattr(expect, field)]


def audible(expect: Expectations) -> Expectations:
    return expect.model_copy(update={field: [] for field in NOT_AUDIBLE})


class AudioRunner(Runner):
    """Each case a new call to the deployed agent, one after the other."""

    def __init__(
        self,
        options: CallOptions,
        suite: VoiceAgentTestSpec,
        *,
        judge: Judge | None,
        judges: Judges,
    ) -> None:
        super().__init__(suite, judge=judge, judges=judges)
        self._options = options
        self._calls = 0

    async def converse(self, case: TestCase) -> CaseResult:
        result = CaseResult(case.name)
        if case.caller == "phone":
            result.failures.append(
                "caller: phone: an audio test calls over WebRTC, not a phone line"
            )
            return result
        self._calls += 1
        call = await SimulatedCall(self._options, self._calls).run(
            [synthesize(t.say) for t in case.turns]
        )
        result.greeting = call.greeting or ""
        for turn, heard in zip(case.turns, call.turns, strict=False):
            observed = ObservedTurn(turn.say, heard.heard, latency_ms=heard.latency_ms or 0.0)
            failures = missed(audible(turn.expect), observed, self._judges)
            if heard.latency_ms is None:
                failures.insert(0, f"no reply within {self._options.reply_timeout:g} s")
            result.turns.append(TurnResult(observed, failures))
        if call.error:
            result.failures.append(f"error: {call.error}")
        return result
