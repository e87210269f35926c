"""The observed state of a VoiceAgent: its workers, calls, tests and revisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import Condition, DispatchName, ShortString
from .voiceagent_rollout import RolloutStatus

TestPhase = Literal["Pending", "Running", "Passed", "Failed", "Error"]
"""Pending (no run yet: the VoiceAgent named does not exist), Running (the Job runs), Passed
(every case held), Failed (a case did not), Error (the run could not judge the agent: a provider
unreachable, the deadline, a crash)."""


class TestsSummary(KubeModel):
    """The last run of the agent's conversation tests."""

    __test__ = False  # not a pytest test class

    phase: TestPhase
    """Running, Passed, Failed or Error."""
    config_hash: ShortString
    """The configuration tested (``status.configHash`` while it is current)."""
    passed: int | None = Field(default=None, ge=0)
    """Cases that passed, across the suites."""
    failed: int | None = Field(default=None, ge=0)
    """Cases that failed, across the suites."""
    failing: list[ShortString] = Field(default_factory=list, max_length=16)
    """The first failed cases, as ``<VoiceAgentTest>/<case>`` (each suite's status has the
    reasons)."""
    message: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """Why the run could not judge (phase Error)."""
    job_name: ShortString | None = None
    """The Job that ran the suites."""
    completion_time: datetime | None = None
    """When the run ended."""


class Revision(KubeModel):
    """A configuration of the agent that was applied."""

    config_hash: ShortString
    """The configuration's hash (the pods' ``kubevox.dev/config-hash``, each call record's)."""
    generation: int = Field(ge=0)
    """The VoiceAgent's .metadata.generation that first applied it."""
    applied_time: datetime
    """When the operator first applied it (again: a return to it is a new revision)."""
    tests: TestPhase | None = None
    """Its conversation tests' result; absent when no suite ran on it."""


class VoiceAgentStatus(KubeModel):
    """The observed state of a VoiceAgent."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The .metadata.generation this status was computed from."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Progressing and Degraded, with reasons."""
    agent_name: DispatchName | None = None
    """The name the workers register under in LiveKit: callers dispatch to this one."""
    replicas: int | None = Field(default=None, ge=0)
    """Worker pods that exist."""
    ready_replicas: int | None = Field(default=None, ge=0)
    """Worker pods ready to take calls."""
    active_calls: int | None = Field(default=None, ge=0)
    """Calls in progress across all worker pods."""
    waiting_calls: int | None = Field(default=None, ge=0)
    """Callers in a room that no worker has taken yet (no worker running, or every one full or
    refusing): the operator hands each to LiveKit again, once a ready worker has room, until one
    takes it. Absent while the operator cannot ask LiveKit."""
    config_hash: ShortString | None = None
    """Hash of the runtime configuration the workers run."""
    tests: TestsSummary | None = None
    """The conversation tests' (VoiceAgentTests naming this agent) run against ``configHash``;
    absent when no suite names the agent."""
    revisions: list[Revision] = Field(default_factory=list, max_length=50)
    """The configurations applied, newest first (``spec.revisionHistoryLimit`` of them)."""
    rollout: RolloutStatus | None = None
    """The last change's rollout (``spec.rollout``); absent until a canary ran."""
    sip_trunk_id: ShortString | None = None
    """ID of the LiveKit SIP inbound trunk kept in step with spec.telephony.sip."""
    sip_dispatch_rule_id: ShortString | None = None
    """ID of the LiveKit SIP dispatch rule kept in step with spec.telephony.sip."""
