"""Status of VoiceAgents, computed from the children's actual state, and the condition helpers
both kinds' status uses (status_knowledge.py: KnowledgeBases). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubevox_api import contract

Obj = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    previous: list[Obj],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
) -> Obj:
    """A metav1.Condition (None: Unknown); lastTransitionTime moves only when the status
    flips."""
    value = "Unknown" if status is None else "True" if status else "False"
    old = next((c for c in previous if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == value else now_iso()
    return {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32000],
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def failure_condition(kind: str) -> str:
    """The condition that says an object of ``kind`` has a problem: ``Degraded`` on a
    VoiceAgent (its workers may still serve), ``Failed`` on a KnowledgeBase."""
    return "Degraded" if kind == contract.VOICE_AGENT_KIND else "Failed"


def conditions_by_type(obj: Obj | None) -> dict[str, Obj]:
    if not obj:
        return {}
    return {c.get("type", ""): c for c in obj.get("status", {}).get("conditions", []) or []}


# --- VoiceAgent ---------------------------------------------------------------------------------


@dataclass
class Rollout:
    """What the Deployment says about the workers."""

    done: bool
    available: bool
    reason: str
    message: str
    failure: Problem | None = None


def rollout_state(dep: Obj | None) -> Rollout:
    if dep is None:
        return Rollout(False, False, "Creating", "the worker Deployment is being created")
    st = dep.get("status", {}) or {}
    conds = conditions_by_type(dep)
    gen = dep["metadata"].get("generation", 0)
    failure = None
    prog = conds.get("Progressing", {})
    if prog.get("reason") == "ProgressDeadlineExceeded":
        failure = Problem(
            "RolloutStuck", f"Deployment {dep['metadata']['name']}: {prog.get('message', '')}"
        )
    rf = conds.get("ReplicaFailure", {})
    if rf.get("status") == "True":
        failure = Problem(
            "ReplicaFailure", f"Deployment {dep['metadata']['name']}: {rf.get('message', '')}"
        )
    available = conds.get("Available", {}).get("status") == "True"
    want = dep.get("spec", {}).get("replicas", 1)
    updated = st.get("updatedReplicas", 0)
    total = st.get("replicas", 0)
    ready = st.get("availableReplicas", 0)
    if st.get("observedGeneration", 0) < gen:
        return Rollout(
            False,
            available,
            "RolloutPending",
            "the Deployment controller has not seen its latest change (pod template or replicas)",
            failure,
        )
    if updated < want:
        return Rollout(
            False,
            available,
            "RollingOut",
            f"{updated} of {want} workers run the latest configuration",
            failure,
        )
    if total > updated:
        return Rollout(
            False, available, "RollingOut", f"{total - updated} old workers are draining", failure
        )
    if ready < updated:
        return Rollout(
            False, available, "WorkersStarting", f"{ready} of {updated} workers are ready", failure
        )
    return Rollout(
        True, available, "RolloutComplete", f"{ready} of {want} workers are ready", failure
    )


AUTOSCALER_CONDITIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "HorizontalPodAutoscaler": (
        ("AbleToScale", "AutoscalerUnable"),
        ("ScalingActive", "AutoscalerInactive"),
    ),
    # KEDA: Ready is False when the trigger fails (Prometheus unreachable, a bad query);
    # HPAActive mirrors its own HPA's ScalingActive.
    "ScaledObject": (
        ("Ready", "AutoscalerUnable"),
        ("HPAActive", "AutoscalerInactive"),
    ),
}
"""Per autoscaler kind: its condition that is False when it cannot scale, and our reason."""


def autoscaler_problem(autoscaler: Obj | None) -> Problem | None:
    """What the agent's HorizontalPodAutoscaler or ScaledObject says is wrong, if anything."""
    if autoscaler is None:
        return None
    kind = str(autoscaler.get("kind", ""))
    conds = conditions_by_type(autoscaler)
    for type_, reason in AUTOSCALER_CONDITIONS.get(kind, ()):
        c = conds.get(type_)
        # ScalingDisabled: replicas were set to 0 by hand, which is a choice, not a fault.
        if c and c.get("status") == "False" and c.get("reason") != "ScalingDisabled":
            return Problem(reason, f"{kind} {c.get('reason')}: {c.get('message', '')}")
    return None


def autoscaler_unavailable(autoscaler: str, missing: list[str]) -> Problem | None:
    """spec.scaling.autoscaler cannot be made: nothing scales the workers."""
    if not missing:
        return None
    return Problem(
        "AutoscalerUnavailable",
        f"spec.scaling.autoscaler {autoscaler}: " + "; ".join(missing) + ". No autoscaler "
        "runs: the workers stay at their current count.",
    )


def active_calls(pods: list[Obj]) -> int | None:
    """Sum of what each live worker pod reports; None when no pod reports (unknown, not 0)."""
    total, reporting = 0, 0
    for pod in pods:
        meta = pod.get("metadata", {})
        # Draining pods (deletionTimestamp set) still carry live calls: they count.
        value = (meta.get("annotations") or {}).get(contract.ACTIVE_CALLS_ANNOTATION)
        if value is None:
            continue
        try:
            total += max(int(value), 0)
            reporting += 1
        except ValueError:
            continue
    if reporting == 0 and pods:
        return None
    return total


@dataclass(frozen=True)
class TelephonyObservation:
    """Where the LiveKit SIP trunk and dispatch rule stand (spec.telephony.sip)."""

    trunk_id: str | None
    rule_id: str | None
    problem: Problem | None = None


@dataclass
class AgentObservation:
    generation: int
    previous: Obj
    agent_name: str
    config_hash: str | None
    blocking: list[Problem] = field(default_factory=list)
    """Missing Secrets or KnowledgeBases: the agent cannot work."""
    waiting: list[str] = field(default_factory=list)
    """KnowledgeBases that exist but are not Ready yet."""
    deployment: Obj | None = None
    autoscaler: Obj | None = None
    """The agent's HorizontalPodAutoscaler or KEDA ScaledObject, as live."""
    autoscaler_unavailable: Problem | None = None
    """spec.scaling.autoscaler cannot be made (see autoscaler_unavailable())."""
    pods: list[Obj] = field(default_factory=list)
    telephony: TelephonyObservation | None = None
    """None: the agent has no telephony (no TelephonyReady condition, no SIP ids)."""
    scales_to_zero: bool = False
    """minReplicas 0 with KEDA: no worker running is the idle state, not an outage."""
    waiting_calls: int | None = None
    """Callers no worker has taken yet (waiting.py); None where the operator does not look."""
    notices: list[Problem] = field(default_factory=list)
    """Degraded, not blocking: the agent runs, with less than it should (an agent policy
    notice, an agent name another agent claims, a child the API server rejects)."""
    tests: Obj | None = None
    """status.tests (status_tests.py), None when no VoiceAgentTest names the agent."""
    revisions: list[Obj] = field(default_factory=list)
    """status.revisions, newest first."""
    rollout: Obj | None = None
    """status.rollout (rollout.py), None when no canary ever ran."""
    resources_fit: tuple[bool, str, str] | None = None
    """The ResourcesFit condition (builders/sizing.py): the pods hold maxCallsPerPod calls."""


def _serving(o: AgentObservation, roll: Rollout) -> tuple[bool, str, str] | None:
    """Ready while the workers only grow or shrink in number: the ones that are ready take
    calls (a rollout of a new template is not this: its pods must all be updated first)."""
    st = (o.deployment or {}).get("status", {}) or {}
    want = (o.deployment or {}).get("spec", {}).get("replicas", 1)
    ready, waiting = st.get("readyReplicas", 0), o.waiting_calls or 0
    if roll.failure:
        return None
    # The autoscaler's change of spec.replicas is a new generation too: from zero, a caller may
    # already wait before the Deployment controller has seen it.
    starting = ("WorkersStarting", "RolloutComplete", "RolloutPending")
    if o.scales_to_zero and ready == 0 and roll.reason in starting:
        if want == 0 and waiting == 0:
            return True, "ScaledToZero", "no worker runs: the next call waits while one starts"
        who = f"{waiting} call(s) wait" if waiting else "nobody waits yet"
        return True, "ScalingFromZero", f"the first worker is starting ({who})"
    if roll.reason == "WorkersStarting" and ready > 0:
        return True, "AgentReady", f"{ready} of {want} workers are ready, more are starting"
    return None


TEST_VERDICTS: dict[str, tuple[bool | None, str]] = {
    "Running": (None, "TestsRunning"),
    "Passed": (True, "TestsPassed"),
    "Failed": (False, "TestsFailed"),
    "Error": (False, "TestsError"),
}
"""A test run's phase as a condition's status and reason: the agent's Tested and each suite's
Passed."""


def tested_condition(previous: list[Obj], tests: Obj, generation: int) -> Obj:
    """The agent's Tested condition, from its status.tests."""
    phase, passed, failed = tests["phase"], tests.get("passed") or 0, tests.get("failed") or 0
    on = f"configuration {tests['configHash']}"
    messages = {
        "Running": f"testing {on}",
        "Passed": f"all {passed} cases passed on {on}",
        "Failed": f"{failed} of {passed + failed} cases failed on {on}: "
        + ", ".join(tests.get("failing") or []),
        "Error": f"the tests of {on} could not run: {tests.get('message')}",
    }
    return condition(previous, "Tested", *TEST_VERDICTS[phase], messages[phase], generation)


def agent_status(o: AgentObservation) -> Obj:
    prev = o.previous.get("conditions", []) or []
    roll = rollout_state(o.deployment)
    degraded = [*o.blocking, *o.notices]
    if roll.failure:
        degraded.append(roll.failure)
    for problem in (o.autoscaler_unavailable, autoscaler_problem(o.autoscaler)):
        if problem:
            degraded.append(problem)
    tel = o.telephony
    if tel is not None and tel.problem is not None:
        # Phone callers cannot get through, browser callers still can: Degraded, not un-Ready.
        degraded.append(tel.problem)

    if o.blocking:
        ready = (False, o.blocking[0].reason, "; ".join(p.message for p in o.blocking))
    elif o.waiting:
        ready = (
            False,
            "KnowledgeBaseNotReady",
            "waiting for KnowledgeBase " + ", ".join(o.waiting) + " to be Ready",
        )
    elif serving := _serving(o, roll):
        ready = serving
    elif not roll.available or not roll.done:
        ready = (False, roll.reason if not roll.done else "WorkersUnavailable", roll.message)
    else:
        ready = (True, "AgentReady", roll.message)

    if o.blocking:
        progressing = (False, "Blocked", "cannot progress until the missing objects exist")
    elif not roll.done:
        progressing = (True, roll.reason, roll.message)
    elif o.waiting:
        progressing = (True, "KnowledgeBaseIndexing", "waiting for " + ", ".join(o.waiting))
    else:
        progressing = (False, "RolloutComplete", roll.message)

    deg = (
        (True, degraded[0].reason, "; ".join(p.message for p in degraded))
        if degraded
        else (False, "AsExpected", "no problem detected")
    )
    st = (o.deployment or {}).get("status", {}) or {}
    status: Obj = {
        "observedGeneration": o.generation,
        "agentName": o.agent_name,
        "conditions": [
            condition(prev, "Ready", *ready, o.generation),
            condition(prev, "Progressing", *progressing, o.generation),
            condition(prev, "Degraded", *deg, o.generation),
        ],
        "replicas": st.get("replicas", 0),
        "readyReplicas": st.get("readyReplicas", 0),
        "activeCalls": active_calls(o.pods),
        "configHash": o.config_hash,
    }
    if o.resources_fit is not None:
        status["conditions"].append(condition(prev, "ResourcesFit", *o.resources_fit, o.generation))
    if o.waiting_calls is not None:
        status["waitingCalls"] = o.waiting_calls
    if o.tests is not None:
        status["tests"] = {k: v for k, v in o.tests.items() if v is not None}
        status["conditions"].append(tested_condition(prev, o.tests, o.generation))
    if o.revisions:
        status["revisions"] = o.revisions
    if o.rollout is not None:
        status["rollout"] = o.rollout
    if tel is not None:
        if tel.problem is not None:
            sip = (False, tel.problem.reason, tel.problem.message)
        else:
            sip = (
                True,
                "SIPReady",
                f"inbound trunk {tel.trunk_id} and dispatch rule {tel.rule_id} are in step",
            )
        status["conditions"].append(condition(prev, "TelephonyReady", *sip, o.generation))
        status["sipTrunkId"] = tel.trunk_id
        status["sipDispatchRuleId"] = tel.rule_id
    return status
