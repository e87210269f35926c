"""agent_status, case by case: the reason and message of each condition of a VoiceAgent for each
situation it tells apart. Pure."""

from __future__ import annotations

import pytest
from kubevox_operator.status import AgentObservation, Problem, TelephonyObservation, agent_status

from .status_rows import Cond, Obj, conditions


def deployment(
    want: int = 1,
    replicas: int | None = None,
    updated: int | None = None,
    available: int | None = None,
    ready: int | None = None,
    *,
    generation: int = 1,
    observed: int = 1,
    conds: list[Obj] | None = None,
) -> Obj:
    replicas = want if replicas is None else replicas
    updated = replicas if updated is None else updated
    available = updated if available is None else available
    return {
        "metadata": {"name": "va", "generation": generation},
        "spec": {"replicas": want},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available if ready is None else ready,
            "conditions": conds
            if conds is not None
            else [{"type": "Available", "status": "True" if available else "False"}],
        },
    }


def hpa(type_: str, reason: str, message: str = "m") -> Obj:
    return {
        "kind": "HorizontalPodAutoscaler",
        "status": {
            "conditions": [{"type": type_, "status": "False", "reason": reason, "message": message}]
        },
    }


SECRET = Problem("SecretMissing", "Secret team/providers not found")
KB_GONE = Problem("KnowledgeBaseMissing", "KnowledgeBase team/kb not found")
NO_LIVEKIT = Problem("SIPUnreachable", "LiveKit did not answer")
NOTICE = Problem("AgentNameConflict", "another agent claims this name")
READY_1 = ("True", "AgentReady", "1 of 1 workers are ready")
AS_EXPECTED = ("False", "AsExpected", "no problem detected")
COMPLETE = ("False", "RolloutComplete", "1 of 1 workers are ready")
PENDING = "the Deployment controller has not seen its latest change (pod template or replicas)"

AGENT_CASES: list[tuple[str, Obj, dict[str, Cond]]] = [
    (
        "no-deployment-yet",
        {},
        {
            "Ready": ("False", "Creating", "the worker Deployment is being created"),
            "Progressing": ("True", "Creating", "the worker Deployment is being created"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "all-workers-ready",
        {"deployment": deployment()},
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Progressing": COMPLETE,
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "secrets-missing",
        {"blocking": [SECRET, KB_GONE], "deployment": deployment()},
        {
            "Ready": ("False", "SecretMissing", f"{SECRET.message}; {KB_GONE.message}"),
            "Progressing": (
                "False",
                "Blocked",
                "cannot progress until the missing objects exist",
            ),
            "Degraded": ("True", "SecretMissing", f"{SECRET.message}; {KB_GONE.message}"),
        },
    ),
    (
        "knowledge-base-indexing",
        {"waiting": ["kb", "faq"], "deployment": deployment()},
        {
            "Ready": (
                "False",
                "KnowledgeBaseNotReady",
                "waiting for KnowledgeBase kb, faq to be Ready",
            ),
            "Progressing": ("True", "KnowledgeBaseIndexing", "waiting for kb, faq"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "template-not-seen-yet",
        {"deployment": deployment(generation=2, observed=1)},
        {
            "Ready": ("False", "RolloutPending", PENDING),
            "Progressing": ("True", "RolloutPending", PENDING),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "rolling-out",
        {"deployment": deployment(want=2, replicas=3, updated=1, available=2)},
        {
            "Ready": ("False", "RollingOut", "1 of 2 workers run the latest configuration"),
            "Progressing": ("True", "RollingOut", "1 of 2 workers run the latest configuration"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "old-workers-draining",
        {"deployment": deployment(want=2, replicas=3, updated=2, available=2)},
        {
            "Ready": ("False", "RollingOut", "1 old workers are draining"),
            "Progressing": ("True", "RollingOut", "1 old workers are draining"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "scaling-up-some-ready",
        {"deployment": deployment(want=3, available=1)},
        {
            "Ready": ("True", "AgentReady", "1 of 3 workers are ready, more are starting"),
            "Progressing": ("True", "WorkersStarting", "1 of 3 workers are ready"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "first-worker-starting",
        {"deployment": deployment(want=1, available=0)},
        {
            "Ready": ("False", "WorkersStarting", "0 of 1 workers are ready"),
            "Progressing": ("True", "WorkersStarting", "0 of 1 workers are ready"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "scaled-to-zero",
        {"deployment": deployment(want=0), "scales_to_zero": True, "waiting_calls": 0},
        {
            "Ready": (
                "True",
                "ScaledToZero",
                "no worker runs: the next call waits while one starts",
            ),
            "Progressing": ("False", "RolloutComplete", "0 of 0 workers are ready"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "scaling-from-zero",
        {
            "deployment": deployment(want=1, available=0),
            "scales_to_zero": True,
            "waiting_calls": 2,
        },
        {
            "Ready": ("True", "ScalingFromZero", "the first worker is starting (2 call(s) wait)"),
            "Progressing": ("True", "WorkersStarting", "0 of 1 workers are ready"),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        # KEDA's scale from zero bumped the generation; the Deployment controller has not seen it.
        "scaling-from-zero-not-yet-observed",
        {
            "deployment": deployment(want=1, available=0, generation=3, observed=2),
            "scales_to_zero": True,
            "waiting_calls": 1,
        },
        {
            "Ready": ("True", "ScalingFromZero", "the first worker is starting (1 call(s) wait)"),
            "Progressing": ("True", "RolloutPending", PENDING),
            "Degraded": AS_EXPECTED,
        },
    ),
    (
        "rollout-stuck",
        {
            "deployment": deployment(
                conds=[
                    {"type": "Available", "status": "True"},
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "too slow",
                    },
                ]
            )
        },
        {
            "Ready": READY_1,
            "Progressing": COMPLETE,
            "Degraded": ("True", "RolloutStuck", "Deployment va: too slow"),
        },
    ),
    (
        "replica-failure",
        {
            "deployment": deployment(
                available=0,
                conds=[{"type": "ReplicaFailure", "status": "True", "message": "quota"}],
            )
        },
        {
            "Ready": ("False", "WorkersStarting", "0 of 1 workers are ready"),
            "Progressing": ("True", "WorkersStarting", "0 of 1 workers are ready"),
            "Degraded": ("True", "ReplicaFailure", "Deployment va: quota"),
        },
    ),
    (
        "hpa-inactive",
        {
            "deployment": deployment(),
            "autoscaler": hpa("ScalingActive", "FailedGetPodsMetric", "no metrics API"),
        },
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Progressing": COMPLETE,
            "Degraded": (
                "True",
                "AutoscalerInactive",
                "HorizontalPodAutoscaler FailedGetPodsMetric: no metrics API",
            ),
        },
    ),
    (
        "hpa-scaling-disabled-by-hand",
        {"deployment": deployment(), "autoscaler": hpa("ScalingActive", "ScalingDisabled")},
        {"Ready": ("True", "AgentReady", "1 of 1 workers are ready"), "Degraded": AS_EXPECTED},
    ),
    (
        "autoscaler-unavailable",
        {
            "deployment": deployment(),
            "autoscaler_unavailable": Problem("AutoscalerUnavailable", "no KEDA"),
        },
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Degraded": ("True", "AutoscalerUnavailable", "no KEDA"),
        },
    ),
    (
        "a-notice",
        {"deployment": deployment(), "notices": [NOTICE]},
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Degraded": ("True", "AgentNameConflict", "another agent claims this name"),
        },
    ),
    (
        "telephony-in-step",
        {"deployment": deployment(), "telephony": TelephonyObservation("ST_1", "SDR_1")},
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Degraded": AS_EXPECTED,
            "TelephonyReady": (
                "True",
                "SIPReady",
                "inbound trunk ST_1 and dispatch rule SDR_1 are in step",
            ),
        },
    ),
    (
        "telephony-unreachable",
        {
            "deployment": deployment(),
            "telephony": TelephonyObservation("ST_1", None, NO_LIVEKIT),
        },
        {
            "Ready": ("True", "AgentReady", "1 of 1 workers are ready"),
            "Degraded": ("True", "SIPUnreachable", "LiveKit did not answer"),
            "TelephonyReady": ("False", "SIPUnreachable", "LiveKit did not answer"),
        },
    ),
]


@pytest.mark.parametrize(
    ("observed", "expected"), [c[1:] for c in AGENT_CASES], ids=[c[0] for c in AGENT_CASES]
)
def test_agent_status(observed: Obj, expected: dict[str, Cond]) -> None:
    o = AgentObservation(
        generation=3, previous={}, agent_name="team-va", config_hash="h", **observed
    )
    status = agent_status(o)
    got = conditions(status)
    assert {t: got[t] for t in expected} == expected
    assert ("TelephonyReady" in got) == (o.telephony is not None)
    assert status["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    assert ("waitingCalls" in status) == (o.waiting_calls is not None)
    if o.telephony is not None:
        assert (status["sipTrunkId"], status["sipDispatchRuleId"]) == (
            o.telephony.trunk_id,
            o.telephony.rule_id,
        )


def test_an_unchanged_condition_keeps_its_transition_time() -> None:
    first = agent_status(AgentObservation(1, {}, "a", "h", deployment=deployment()))
    for c in first["conditions"]:
        c["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = agent_status(AgentObservation(2, first, "a", "h", deployment=deployment()))
    assert {c["lastTransitionTime"] for c in again["conditions"]} == {"2020-01-01T00:00:00Z"}
    blocked = agent_status(AgentObservation(3, first, "a", "h", blocking=[SECRET]))
    times = {c["type"]: c["lastTransitionTime"] for c in blocked["conditions"]}
    assert times["Ready"] != "2020-01-01T00:00:00Z"  # True → False
    assert times["Progressing"] == "2020-01-01T00:00:00Z"  # False → False
