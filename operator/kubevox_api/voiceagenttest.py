"""VoiceAgentTest: conversations an agent must hold before callers hear a change.

A suite of cases, each a caller's turns with what every reply must (or must not) do. Today it is
run by ``kubevox-agent test -f agent.yaml -f tests.yaml`` in text mode, before applying a
change; the operator does not run it on the cluster yet (no CRD is installed for this kind).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import ResourceName, UniqueByName
from .contract import API_VERSION, VOICE_AGENT_TEST_KIND
from .voiceagent_providers import LLMEndpoint

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
    cases: UniqueByName[TestCase] = Field(min_length=1, max_length=100)
    """The conversations."""


class VoiceAgentTest(KubeModel):
    """Conversation tests of a VoiceAgent: what its replies must say, cite, refuse or do."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    api_version: Literal["kubevox.dev/v1alpha1"] = API_VERSION
    kind: Literal["VoiceAgentTest"] = VOICE_AGENT_TEST_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: VoiceAgentTestSpec
