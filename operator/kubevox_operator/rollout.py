"""The canary rollout of a VoiceAgent's configuration, as a pure function of what was observed.

Each pass of the reconciler calls :func:`next_rollout` with the last ``status.rollout`` and what
the cluster, the tests and Prometheus show now; it returns the new ``status.rollout`` and what
to apply: whether the stable pool (Deployment ``<name>``) keeps its configuration or takes the
spec's, whether the canary pool (``<name>-canary``) exists, and the split each pool reads
(ConfigMap ``<name>-rollout``, agent_runtime/traffic_split.py).

Every pod reads the split a kubelet sync after it is written, each at its own moment. A share
therefore changes in two writes, ``settle`` seconds apart: growing, the canary's weight first
(a room both pools accept is served by whichever LiveKit asks), then the stable pool's yield;
shrinking, the yield first. In between, no room is refused by every pod.

Phases: Progressing (step ``i``: widening while ``stableYield < canaryWeight``, then held for
``pauseSeconds`` and judged), Promoting (the stable pool rolls to the new configuration with the
split unchanged, then yields nothing), Promoted; Aborting (the stable pool takes every call, the
canary still runs until every pod knows it), Aborted (the canary is gone, the stable
configuration serves until the spec changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from kubevox_api.voiceagent_rollout import CanaryStrategy, RolloutSpec

Obj = dict[str, Any]

IN_FLIGHT = ("Progressing", "Promoting", "Aborting")
RECHECK_SECONDS = 10.0
"""How often a rollout in flight is looked at (metrics, elapsed pauses), at most."""


@dataclass(frozen=True)
class Verdict:
    """The canary's metrics over the current step, judged against ``canary.analysis``."""

    state: Literal["pass", "breach", "wait"]
    message: str = ""
    measurement: Obj | None = None


PASS = Verdict("pass")


@dataclass(frozen=True)
class RolloutObservation:
    spec: RolloutSpec
    previous: Obj | None
    """The last status.rollout."""
    stable_hash: str | None
    """The configuration the stable pool runs (None: no worker was ever rolled out)."""
    new_hash: str
    """The configuration of the spec."""
    now: datetime
    settle_seconds: float
    stable_follows_split: bool
    """The stable pool's pods mount the split (they did not before strategy Canary was set)."""
    canary_available: bool = False
    """The canary Deployment runs the new configuration with at least one available pod."""
    stable_rolled: bool = False
    """The stable Deployment runs the new configuration on every pod, all available."""
    tests: str | None = None
    """The conversation tests' phase on the new configuration (None: no suite names the agent)."""
    verdict: Verdict = PASS


@dataclass(frozen=True)
class RolloutDecision:
    status: Obj | None
    """The new status.rollout."""
    keep_stable: bool = False
    """The stable pool's Deployment, ConfigMap and egress policy stay as they are."""
    canary: bool = False
    """The canary pool exists."""
    split: tuple[int, int] = (0, 0)
    """(canaryWeight, stableYield) the pods read."""
    event: tuple[str, str, str] | None = None
    """(type, reason, message) of an Event to record."""
    again: float | None = None
    """Seconds after which to look again."""


def judged_window(previous: Obj | None, new_hash: str, now: datetime) -> float | None:
    """Seconds of the current step whose canary metrics judge it (None: nothing to judge: no
    canary of ``new_hash`` holds its share now)."""
    prev = previous or {}
    at_weight = 0 < prev.get("canaryWeight", 0) <= prev.get("stableYield", 0)
    if prev.get("phase") != "Progressing" or prev.get("canaryHash") != new_hash or not at_weight:
        return None
    return max(_elapsed(prev, now), 1.0)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _elapsed(prev: Obj, now: datetime) -> float:
    since = prev.get("transitionTime")
    if not since:
        return float("inf")
    started = datetime.fromisoformat(str(since).replace("Z", "+00:00"))
    return (now - started).total_seconds()


@dataclass
class _Step:
    """The rollout's status under construction."""

    phase: str
    stable_hash: str
    canary_hash: str | None
    step: int | None
    weight: int
    yield_: int
    since: str
    message: str
    analysis: Obj | None = field(default=None)

    @classmethod
    def of(cls, prev: Obj) -> _Step:
        return cls(
            prev["phase"],
            prev["stableHash"],
            prev.get("canaryHash"),
            prev.get("step"),
            prev.get("canaryWeight", 0),
            prev.get("stableYield", 0),
            prev["transitionTime"],
            prev.get("message", ""),
            prev.get("analysis"),
        )

    def to_status(self) -> Obj:
        out: Obj = {
            "phase": self.phase,
            "stableHash": self.stable_hash,
            "canaryHash": self.canary_hash,
            "step": self.step,
            "canaryWeight": self.weight,
            "stableYield": self.yield_,
            "transitionTime": self.since,
            "message": self.message,
            "analysis": self.analysis,
        }
        return {k: v for k, v in out.items() if v is not None and v != ""}


def next_rollout(o: RolloutObservation) -> RolloutDecision:
    prev = o.previous or {}
    canary = o.spec.canary
    if o.spec.strategy != "Canary" or canary is None:
        return RolloutDecision(None)  # rolled pod by pod; a canary left over goes
    phase = prev.get("phase")
    ongoing = phase in (*IN_FLIGHT, "Aborted") and prev.get("canaryHash") == o.new_hash
    if ongoing:
        return _advance(o, canary, _Step.of(prev))
    if o.stable_hash is None or o.stable_hash == o.new_hash or not o.stable_follows_split:
        note = (
            ""
            if o.stable_follows_split or o.stable_hash in (None, o.new_hash)
            else "rolled pod by pod: the stable workers did not read the split yet (strategy"
            " Canary applies from the next change)"
        )
        status = _Step("Promoted", o.new_hash, None, None, 0, 0, _iso(o.now), note).to_status()
        if phase == "Promoted" and prev.get("stableHash") == o.new_hash:
            status = prev  # nothing changed: the same status, the same transition time
        return RolloutDecision(status)
    # A new configuration (or another one during a rollout): its canary starts at step 1.
    first = canary.steps[0].weight
    state = _Step(
        "Progressing",
        o.stable_hash,
        o.new_hash,
        0,
        first,
        0,
        _iso(o.now),
        f"step 1 of {len(canary.steps)}: starting the canary's workers",
    )
    return RolloutDecision(
        state.to_status(),
        keep_stable=True,
        canary=True,
        split=(first, 0),
        event=("Normal", "CanaryStarted", f"configuration {o.new_hash}: canary at {first}%"),
        again=o.settle_seconds,
    )


def _advance(o: RolloutObservation, canary: CanaryStrategy, s: _Step) -> RolloutDecision:
    elapsed = _elapsed({"transitionTime": s.since}, o.now)
    settled = elapsed >= o.settle_seconds
    wait = max(min(o.settle_seconds - elapsed, RECHECK_SECONDS), 1.0)
    if s.phase == "Aborted":
        return RolloutDecision(s.to_status(), keep_stable=True)
    if s.phase == "Aborting":
        if settled:  # every pod knows the stable pool takes all: the canary drains away
            s.phase, s.weight, s.since = "Aborted", 0, _iso(o.now)
            return RolloutDecision(s.to_status(), keep_stable=True)
        return RolloutDecision(
            s.to_status(), keep_stable=True, canary=True, split=(s.weight, 0), again=wait
        )
    if s.phase == "Promoting":
        if s.yield_ > 0:
            if o.stable_rolled:  # the stable pool runs the new configuration: it takes all
                s.yield_, s.since = 0, _iso(o.now)
                s.message = "the stable workers run the new configuration; the canary drains"
                return RolloutDecision(
                    s.to_status(), canary=True, split=(s.weight, 0), again=o.settle_seconds
                )
            return RolloutDecision(
                s.to_status(), canary=True, split=(s.weight, s.yield_), again=RECHECK_SECONDS
            )
        if settled:
            done = _Step("Promoted", o.new_hash, None, None, 0, 0, _iso(o.now), "")
            return RolloutDecision(
                done.to_status(),
                event=("Normal", "CanaryPromoted", f"configuration {o.new_hash} takes all calls"),
            )
        return RolloutDecision(s.to_status(), canary=True, split=(s.weight, 0), again=wait)
    # Progressing.
    s.analysis = o.verdict.measurement or s.analysis  # what a metrics abort was judged on
    failed = _failure(o)
    if failed:
        s.phase, s.yield_, s.since, s.message = "Aborting", 0, _iso(o.now), failed
        return RolloutDecision(
            s.to_status(),
            keep_stable=True,
            canary=True,
            split=(s.weight, 0),
            # No Event here: the Degraded condition's reason CanaryAborted posts one, with why.
            again=o.settle_seconds,
        )
    steps = canary.steps
    step = s.step or 0
    held = RolloutDecision(
        s.to_status(), keep_stable=True, canary=True, split=(s.weight, s.yield_), again=wait
    )
    if s.yield_ < s.weight:  # widening: the canary's side first
        if not o.canary_available:
            s.message = f"step {step + 1} of {len(steps)}: waiting for the canary's workers"
        elif settled:
            s.yield_, s.since = s.weight, _iso(o.now)
            s.message = f"step {step + 1} of {len(steps)}: {s.weight}% of new calls"
            s.analysis = None
            return replace(held, status=s.to_status(), split=(s.weight, s.weight))
        return replace(held, status=s.to_status())
    pause = steps[step].pause_seconds
    if elapsed < pause:
        return replace(held, again=max(min(pause - elapsed, RECHECK_SECONDS), 1.0))
    if o.tests not in (None, "Passed"):
        s.message = f"step {step + 1} of {len(steps)}: waiting for the conversation tests"
        return replace(held, status=s.to_status(), again=RECHECK_SECONDS)
    if o.verdict.state == "wait":
        s.message = f"step {step + 1} of {len(steps)}: {o.verdict.message}"
        return replace(held, status=s.to_status(), again=RECHECK_SECONDS)
    if step + 1 < len(steps):
        nxt = steps[step + 1].weight
        s.step, s.weight, s.since = step + 1, nxt, _iso(o.now)
        s.message = f"step {step + 2} of {len(steps)}: widening to {nxt}%"
        return RolloutDecision(
            s.to_status(),
            keep_stable=True,
            canary=True,
            split=(nxt, s.yield_),
            event=("Normal", "CanaryStep", f"configuration {o.new_hash}: canary at {nxt}%"),
            again=o.settle_seconds,
        )
    s.phase, s.stable_hash, s.since = "Promoting", o.new_hash, _iso(o.now)
    s.message = "the stable workers roll to the new configuration"
    return RolloutDecision(
        s.to_status(),
        canary=True,
        split=(s.weight, s.yield_),
        event=("Normal", "CanaryPromoting", f"configuration {o.new_hash} passed every step"),
        again=RECHECK_SECONDS,
    )


def _failure(o: RolloutObservation) -> str:
    """Why the canary must go back, or ""."""
    if o.tests in ("Failed", "Error"):
        return f"its conversation tests {o.tests.lower()} (status.tests)"
    if o.verdict.state == "breach":
        return o.verdict.message
    return ""
