"""VoiceAgentTest: conversations an agent must hold before callers hear a change.

A suite of cases, each a caller's turns with what every reply must (or must not) do. It is run
by ``kubevox-agent test -f agent.yaml -f tests.yaml`` before applying a change, and on the
cluster by the operator: a Job for every new configuration of the agent, whose result is this
kind's status (and the agent's ``status.tests``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import Condition, ResourceName, ShortString, UniqueByName
from .contract import API_VERSION, VOICE_AGENT_TEST_KIND
from .runtime_config import stable_hash
from .voiceagent_providers import LLMEndpoint
from .voiceagent_status import TestPhase

CASE_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
ToolName = Literal["end_call", "transfer_to_human"]
"""The tools an agent may be given (``spec.tools``), by the name the language model calls."""


class Expectations(KubeModel):
    """What the agent's reply to one caller turn must do. Every expectation set must hold;
    text comparisons ignore case, punctuation and spacing ("9 a.m." contains "9 am")."""

    contains: list[Text] = Field(default_factory=list, max_length=16)
    """Texts the reply must contain, each of them."""
    not_contains: list[Text] = Field(default_factory=list, max_length=16)
    """Texts the reply must not contain, none of them."""
    grounded_in: list[Annotated[str, StringConstraints(min_length=1, max_length=63)]] = Field(
        default_factory=list, max_length=8
    )
    """Knowledge-base sources (a source's ``name`` in its KnowledgeBase) the reply must be
    grounded in: a sentence of the reply is supported by a passage of each, and every factual
    sentence by the passages retrieved for the turn, as the agent's grounding guard judges
    support (its ``minSupport`` and language)."""
    refuses: bool | None = None
    """True: the agent declines to answer with its ``guardRefusal`` phrase (the knowledge bases
    do not answer the question); false: it does not. An answer the language model phrases as a
    refusal is judged by a ``rubric``."""
    calls: list[ToolName] = Field(default_factory=list, max_length=2)
    """Tools the agent must call while answering this turn."""
    not_calls: list[ToolName] = Field(default_factory=list, max_length=2)
    """Tools the agent must not call while answering this turn."""
    max_latency_ms: int | None = Field(default=None, ge=1, le=600000)
    """Most milliseconds from the caller's words to the agent's whole reply (text mode: the
    knowledge-base retrieval and the language model, no speech)."""


class Turn(KubeModel):
    """One thing the caller says, and what the agent's reply must do."""

    say: Text
    """The caller's words."""
    expect: Expectations = Field(default_factory=Expectations)
    """What the reply must do; none: the turn only moves the conversation on."""


class TestCase(KubeModel):
    """One conversation, from the agent's greeting to the caller's last turn."""

    __test__ = False  # not a pytest test class

    name: Annotated[str, StringConstraints(pattern=CASE_NAME)]
    """Identifier of the case in results; unique in the suite."""
    caller: Literal["web", "phone"] = "web"
    """How the caller reached the agent: ``transfer_to_human`` works on a phone line only."""
    turns: list[Turn] = Field(min_length=1, max_length=32)
    """The caller's turns, in order."""
    rubric: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    """What the whole conversation must achieve, judged by ``spec.judge`` from the transcript;
    the judge's verdict and reason are reported."""


class VoiceAgentTestSpec(KubeModel):
    """A suite of conversation tests for one VoiceAgent."""

    agent_ref: ResourceName
    """Name of the VoiceAgent under test, in the same namespace."""
    judge: LLMEndpoint | None = None
    """The language model that judges the cases' rubrics (default: the agent's own ``llm``).
    A rubric needs a model able to judge: provider ``local`` (135M parameters) is refused."""
    judge_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    """Longest wait for one verdict; a judge that does not answer fails the case."""
    timeout_seconds: int = Field(default=900, ge=30, le=7200)
    """On the cluster, the longest the suite's run may take (the Job's deadline, with the
    agent's other suites); a run cut short is phase Error, not Failed."""
    cases: UniqueByName[TestCase] = Field(min_length=1, max_length=100)
    """The conversations."""


class VoiceAgentTest(KubeModel):
    """Conversation tests of a VoiceAgent: what its replies must say, cite, refuse or do."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    api_version: Literal["kubevox.dev/v1alpha1"] = API_VERSION
    kind: Literal["VoiceAgentTest"] = VOICE_AGENT_TEST_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: VoiceAgentTestSpec
    status: VoiceAgentTestStatus | None = None


Reason = Annotated[str, StringConstraints(max_length=512)]


class CaseOutcome(KubeModel):
    """How one case of the suite went in the last run."""

    name: Annotated[str, StringConstraints(pattern=CASE_NAME)]
    """The case's name."""
    passed: bool
    """Whether every expectation and the rubric held."""
    reasons: list[Reason] = Field(default_factory=list, max_length=8)
    """Why it failed: each expectation that did not hold (with the turn), the judge's reason."""


class VoiceAgentTestStatus(KubeModel):
    """The last run of the suite on the cluster, against the agent's current configuration."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The .metadata.generation of the suite that ran."""
    phase: TestPhase | None = None
    """Pending, Running, Passed, Failed or Error."""
    config_hash: ShortString | None = None
    """The agent configuration (its ``status.configHash``) the result is for."""
    passed: int | None = Field(default=None, ge=0)
    """Cases that passed."""
    failed: int | None = Field(default=None, ge=0)
    """Cases that failed."""
    cases: list[CaseOutcome] = Field(default_factory=list, max_length=100)
    """Each case's result, with the reasons of a failure."""
    message: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """What went wrong when the run could not judge (phase Error): the end of its log."""
    job_name: ShortString | None = None
    """The Job that ran (or runs) the suite."""
    completion_time: datetime | None = None
    """When the run ended."""
    conditions: list[Condition] = Field(default_factory=list, max_length=8)
    """Passed: True when every case held, False with reason CasesFailed, RunFailed or Running."""


class ReportedCase(CaseOutcome):
    """A case's outcome as the test Job reports it: with its suite."""

    suite: ShortString
    """The VoiceAgentTest's name."""


class TestReport(KubeModel):
    """What a test Job hands the operator (its container's termination message): the
    configuration and suites it really ran, and each case's outcome."""

    __test__ = False  # not a pytest test class

    config_hash: ShortString
    suites_hash: ShortString
    cases: list[ReportedCase]
    passed_unlisted: dict[str, int] = Field(default_factory=dict)
    """Passed cases left out of ``cases`` to fit the message, counted per suite."""
    failed_unlisted: dict[str, int] = Field(default_factory=dict)
    """Failed cases left out of ``cases`` to fit the message (hundreds failed), per suite."""

    def termination_message(self, limit: int = 4096) -> str:
        """The report as compact JSON within ``limit`` bytes (the kubelet keeps no more):
        reasons are cut shorter, then fewer, then dropped; then passed cases are only counted,
        then the last failed ones. Every case is listed or counted."""
        stages = [(300, 4, True), (120, 2, True), (60, 1, True), (0, 0, True), (80, 1, False)]
        for chars, count, list_passed in [*stages, (0, 0, False)]:
            listed = [
                c.model_copy(update={"reasons": [r[:chars] for r in c.reasons][:count]})
                for c in self.cases
                if list_passed or not c.passed
            ]
            text = self._with(listed)
            if len(text.encode()) <= limit:
                return text
        while listed:  # failed cases without reasons, still too many: count the last ones
            listed.pop()
            text = self._with(listed)
            if len(text.encode()) <= limit:
                return text
        raise ValueError(f"the report does not fit in {limit} bytes")

    def _with(self, listed: list[ReportedCase]) -> str:
        unlisted: dict[bool, dict[str, int]] = {True: {}, False: {}}
        names = {(c.suite, c.name) for c in listed}
        for c in self.cases:
            if (c.suite, c.name) not in names:
                counts = unlisted[c.passed]
                counts[c.suite] = counts.get(c.suite, 0) + 1
        cut = self.model_copy(
            update={
                "cases": listed,
                "passed_unlisted": unlisted[True],
                "failed_unlisted": unlisted[False],
            }
        )
        return json.dumps(cut.model_dump(by_alias=True, mode="json"), separators=(",", ":"))


def suites_hash(suites: Sequence[VoiceAgentTest]) -> str:
    """Hash of what the suites ask (names and specs): a new one runs the tests again."""
    return stable_hash(
        sorted(
            [str(s.metadata.get("name", "")), s.spec.model_dump(by_alias=True, mode="json")]
            for s in suites
        )
    )
