"""Run a VoiceAgentTest's cases against the real Agent in text mode.

Each case is a fresh session of the same Agent a call runs (instructions, phrases, knowledge
grounding and guard, tools, LLM fallbacks), fed the caller's turns one by one as
``kubevox-agent chat`` feeds stdin. The knowledge bases' retrievers are made once per suite; the
passages each turn's answer was given are recorded for ``groundedIn``.
"""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubevox_api import AgentRuntimeConfig, ResolvedKnowledgeBase
from kubevox_api.languages import text_language
from kubevox_api.runtime_config import config_hash
from kubevox_api.voiceagenttest import TestCase, VoiceAgentTestSpec
from livekit.agents import AgentSession, llm
from livekit.agents.voice.run_result import (
    ChatMessageEvent,
    FunctionCallEvent,
    RunEvent,
    RunResult,
)

from ..agent import phrases_of
from ..callrecord import CallRecord
from ..controls import TextControls
from ..grounding import Grounding, RetrievedChunk, Retriever
from ..grounding_guard import GroundingGuard
from ..knowledge import build_retriever
from ..knowledge_hook import RetrieverFactory, build_grounding
from ..session import build_call
from .expectations import Judges, ObservedTurn, Passage, missed
from .judge import Judge, Verdict


@dataclass
class TurnResult:
    turn: ObservedTurn
    failures: list[str]


@dataclass
class CaseResult:
    name: str
    greeting: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """The case's own failures: the call ended before a turn, an error."""
    verdict: Verdict | None = None
    """The judge's, when the case has a rubric."""

    @property
    def passed(self) -> bool:
        rubric_ok = self.verdict is None or self.verdict.passed
        return rubric_ok and not self.failures and all(not t.failures for t in self.turns)

    def transcript(self) -> list[tuple[str, str]]:
        lines = [("agent", self.greeting)] if self.greeting else []
        for t in self.turns:
            lines += [("caller", t.turn.said), ("agent", t.turn.reply)]
        return lines


class RecordingGrounding(Grounding):
    """The agent's grounding, remembering the passages given for the turn in progress."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passages: list[RetrievedChunk] = []

    def begin_turn(self) -> None:
        self.passages = []

    async def context_for(
        self, chat_ctx: llm.ChatContext
    ) -> tuple[str | None, list[RetrievedChunk]]:
        question, chunks = await super().context_for(chat_ctx)
        self.passages.extend(chunks)
        return question, chunks


def shared_retrievers(factory: RetrieverFactory = build_retriever) -> RetrieverFactory:
    """``factory``, making each knowledge base's retriever once for every case of the suite."""
    made: dict[str, Retriever] = {}

    def once(
        kb: ResolvedKnowledgeBase, env: Mapping[str, str], *, language: str | None = None
    ) -> Retriever:
        if kb.name not in made:
            made[kb.name] = factory(kb, env, language=language)
        return made[kb.name]

    return once


def judges_for(config: AgentRuntimeConfig) -> Judges:
    spec = config.spec
    guard = GroundingGuard(
        min_support=spec.grounding_guard.min_support, language=text_language(spec.language)
    )
    return Judges(refusal=phrases_of(config).guard_refusal, guard=guard)


def _reply(events: Sequence[RunEvent]) -> tuple[str, tuple[str, ...]]:
    texts = [
        e.item.text_content or ""
        for e in events
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant"
    ]
    tools = tuple(e.item.name for e in events if isinstance(e, FunctionCallEvent))
    return " ".join(t for t in texts if t), tools


class Runner(ABC):
    """Holds a suite's conversations one after the other (a case's latency is its own, not
    shared) and has each rubric judged."""

    def __init__(self, suite: VoiceAgentTestSpec, *, judge: Judge | None, judges: Judges) -> None:
        self._suite = suite
        self._judge = judge
        self._judges = judges

    @abstractmethod
    async def converse(self, case: TestCase) -> CaseResult:
        """The case's conversation and its turns' expectations, checked."""

    async def run_case(self, case: TestCase) -> CaseResult:
        result = await self.converse(case)
        if case.rubric:
            assert self._judge is not None, "build_judge makes a judge for suites with rubrics"
            result.verdict = await self._judge.judge(case.rubric, result.transcript())
        return result

    async def run(
        self,
        cases: Sequence[TestCase] | None = None,
        on_result: Callable[[CaseResult], None] = lambda _r: None,
    ) -> list[CaseResult]:
        results = []
        for case in cases if cases is not None else self._suite.cases:
            try:
                result = await self.run_case(case)
            except Exception as e:  # one broken case does not hide the others' results
                result = CaseResult(case.name, failures=[f"error: {e!r}"[:500]])
            on_result(result)
            results.append(result)
        return results


class TextRunner(Runner):
    """Each case a fresh text session of the agent, in this process."""

    def __init__(
        self,
        config: AgentRuntimeConfig,
        suite: VoiceAgentTestSpec,
        *,
        judge: Judge | None,
        retrievers: RetrieverFactory | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        super().__init__(suite, judge=judge, judges=judges_for(config))
        self._config = config
        self._config_hash = config_hash(config)
        self._retrievers = shared_retrievers(retrievers or build_retriever)
        self._env = env

    def _grounding(self) -> RecordingGrounding | None:
        return build_grounding(self._config, self._retrievers, self._env, RecordingGrounding)

    @staticmethod
    async def _turn(
        session: AgentSession[None], said: str, grounding: RecordingGrounding | None
    ) -> ObservedTurn:
        if grounding is not None:
            grounding.begin_turn()
        start = time.perf_counter()
        run: RunResult[None] = await session.run(user_input=said)
        latency_ms = (time.perf_counter() - start) * 1000
        reply, tools = _reply(run.events)
        chunks = grounding.passages if grounding is not None else []
        passages = tuple(Passage(c.source, c.text) for c in chunks)
        return ObservedTurn(said, reply, tools, passages, latency_ms)

    async def converse(self, case: TestCase) -> CaseResult:
        result = CaseResult(case.name)
        record = CallRecord.of(
            self._config, f"test-{case.name}", "test", self._config_hash, caller="text"
        )
        controls = TextControls(pretend_phone=case.caller == "phone")
        grounding = self._grounding()
        call = build_call(
            self._config,
            record=record,
            controls=controls,
            grounding=grounding,
            audio=False,
            env=self._env,
        )
        ended = asyncio.Event()
        call.session.on("close", lambda _ev: ended.set())
        async with call.session as session:
            greeting = await session.start(call.agent, capture_run=True)
            result.greeting, _ = _reply(greeting.events)
            for i, turn in enumerate(case.turns):
                if ended.is_set():
                    result.failures.append(f"turns[{i}]: the agent ended the call before it")
                    break
                observed = await self._turn(session, turn.say, grounding)
                failures = missed(turn.expect, observed, self._judges)
                result.turns.append(TurnResult(observed, failures))
                if "end_call" in observed.tools or controls.transfers:
                    ended.set()  # the agent hung up (once its goodbye is said) or handed over
        return result
