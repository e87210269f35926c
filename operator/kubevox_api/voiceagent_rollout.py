"""How a new configuration of a VoiceAgent reaches its callers (``spec.rollout``), and what the
operator observed of it (``status.rollout``).

A configuration is what the worker process reads (``status.configHash``). With the ``Canary``
strategy a new one first runs in a second pool of workers, ``<name>-canary``, that takes a
declared share of the new calls while the stable pool takes the rest; each step is judged on the
conversation tests and on the canary's own call metrics in Prometheus before the share grows.
docs/testing-agents.md ("Canary rollouts") tells the whole story."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import ShortString

RolloutStrategy = Literal["Rolling", "Canary"]


class CanaryStep(KubeModel):
    """One step of a canary: a share of the new calls, held for a while, then judged."""

    weight: int = Field(ge=1, le=100)
    """Percent of new calls the new configuration's workers take during this step. A call is
    given by its room's name, so a caller who calls again with the same room lands on the same
    side."""
    pause_seconds: int = Field(default=60, ge=0, le=86400)
    """How long the step lasts once every worker follows its weight; then it is judged, and
    the next step starts if the tests and the metrics allow it."""


class CanaryAnalysis(KubeModel):
    """What the canary's calls during a step must show for the rollout to go on. Each rate is
    read from Prometheus for the new configuration alone (the workers label their call metrics
    with ``config_hash``) over the step; an unset bound is not checked."""

    min_calls: int = Field(default=0, ge=0, le=100000)
    """Calls the new configuration must have ended during the step before it is judged: the
    step waits for them (a rate of two calls says little)."""
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    """Highest share of the canary's calls that may end in outcome ``error``."""
    max_apology_rate: float | None = Field(default=None, ge=0, le=1)
    """Highest share of the canary's replies that may be an apology (every language model
    failed) or the grounding guard's refusal."""
    max_voice_to_voice_p95_seconds: float | None = Field(default=None, gt=0, le=60)
    """Highest 95th percentile of the canary's voice-to-voice latency (end of the caller's
    speech to the agent's first audio), in seconds."""
    max_transfer_rate: float | None = Field(default=None, ge=0, le=1)
    """Highest share of the canary's calls that may end transferred to a human."""

    @property
    def bounded(self) -> bool:
        """Whether any metric is checked (then Prometheus is needed)."""
        return any(
            v is not None
            for v in (
                self.max_error_rate,
                self.max_apology_rate,
                self.max_voice_to_voice_p95_seconds,
                self.max_transfer_rate,
            )
        )


class CanaryStrategy(KubeModel):
    """The steps of a canary rollout and the bounds that judge each."""

    steps: list[CanaryStep] = Field(min_length=1, max_length=10)
    """Shares of new calls, increasing; after the last step the new configuration replaces the
    stable one (the stable pool rolls to it, its calls drain) and takes every call."""
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)
    """Bounds on the canary's call metrics; a step over any of them aborts the rollout."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.steps.map(s, s.weight).isSorted()"
            " && self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
            message="steps: each step's weight must be greater than the one before",
            check=lambda s: all(a.weight < b.weight for a, b in itertools.pairwise(s.steps)),
            field_path=".steps",
        ),
    )


class RolloutSpec(KubeModel):
    """How a change of the agent's configuration reaches its callers."""

    strategy: RolloutStrategy = "Rolling"
    """``Rolling``: the workers are replaced a pod at a time, each draining its calls.
    ``Canary``: the new configuration first takes the shares of ``canary.steps``, and is rolled
    back on its own when its tests fail or its calls go over ``canary.analysis``. A change of
    the image, resources or pod options (not part of the configuration) always rolls."""
    canary: CanaryStrategy | None = None
    """Steps and bounds of the ``Canary`` strategy."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="(self.strategy == 'Canary') == has(self.canary)",
            message="canary: set it with strategy Canary, and only then",
            check=lambda s: (s.strategy == "Canary") == (s.canary is not None),
            field_path=".canary",
        ),
    )


RolloutPhase = Literal["Progressing", "Promoting", "Promoted", "Aborting", "Aborted"]
"""Progressing (the canary takes its step's share), Promoting (the stable pool rolls to the new
configuration, then hands every call back to it), Promoted (done), Aborting (new calls go back to
the stable pool while every worker learns it), Aborted (the canary drained away; the stable
configuration serves until the spec changes)."""


class CanaryMeasurement(KubeModel):
    """The canary's calls during the current step, as Prometheus last gave them."""

    calls: int = Field(ge=0)
    """Calls the canary ended during the step."""
    error_rate: float | None = Field(default=None, ge=0)
    """Share of them that ended in outcome ``error``."""
    apology_rate: float | None = Field(default=None, ge=0)
    """Share of their replies that were an apology or the grounding guard's refusal."""
    voice_to_voice_p95_seconds: float | None = Field(default=None, ge=0)
    """95th percentile of their voice-to-voice latency, in seconds."""
    transfer_rate: float | None = Field(default=None, ge=0)
    """Share of them that ended transferred."""


class RolloutStatus(KubeModel):
    """Where the last change of configuration is in its rollout."""

    phase: RolloutPhase
    """Progressing, Promoting, Promoted, Aborting or Aborted."""
    stable_hash: ShortString
    """The configuration the stable pool (Deployment ``<name>``) runs."""
    canary_hash: ShortString | None = None
    """The configuration rolled out (Deployment ``<name>-canary``); absent once promoted."""
    step: int | None = Field(default=None, ge=0)
    """Index of the current step in ``spec.rollout.canary.steps``."""
    canary_weight: int = Field(default=0, ge=0, le=100)
    """Percent of new calls the canary's workers accept."""
    stable_yield: int = Field(default=0, ge=0, le=100)
    """Percent of new calls the stable workers leave to the canary. Each pod reads both from
    ConfigMap ``<name>-rollout`` a kubelet sync after it changes, so a share grows on the
    canary's side first and shrinks on the stable side first: a call is never refused by
    every pod."""
    transition_time: datetime
    """When the phase, the step or a share last changed."""
    message: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """What the rollout waits for, or why it was aborted."""
    analysis: CanaryMeasurement | None = None
    """The canary's calls during the current step."""
