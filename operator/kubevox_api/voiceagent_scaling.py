"""The VoiceAgent's scaling: the autoscaler follows the calls in progress."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import KubeModel, Rule


class Scaling(KubeModel):
    """How many worker pods run: the autoscaler follows active calls, not CPU."""

    autoscaler: Literal["hpa", "keda"] = "hpa"
    """What scales the workers on the calls in progress they export, ``kubevox_active_calls``.
    ``hpa``: a HorizontalPodAutoscaler reading it as a Pods custom metric; needs
    prometheus-adapter or another custom metrics server (until one serves it the agent is
    Degraded, ``AutoscalerInactive``). ``keda``: a KEDA ScaledObject whose Prometheus trigger
    queries it; needs KEDA in the cluster and the operator's Prometheus URL
    (``--prometheus-url``); without either the agent is Degraded (``AutoscalerUnavailable``),
    no autoscaler runs and the pod count stays where it is. Both apply the same bounds, target
    and scale-up and scale-down behavior; switching deletes the other one."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest worker pods, even with no calls. 0 scales to zero with ``autoscaler: keda``: once
    the calls have stayed at 0 for scaleDownStabilizationSeconds, no pod runs, and the next
    caller waits while one starts (status.waitingCalls counts them; the operator watches
    LiveKit for such calls, the autoscaler adds them to the active calls and the operator hands
    each to the new worker). With ``hpa`` (whose minReplicas 0 needs an alpha feature gate) 0
    runs 1 pod."""
    max_replicas: int = Field(default=10, ge=1, le=1000)
    """Most worker pods."""
    target_calls_per_pod: int = Field(default=4, ge=1, le=500)
    """Average active calls per pod the autoscaler aims for; keep it below maxCallsPerPod for
    headroom while new pods start."""
    max_calls_per_pod: int = Field(default=6, ge=1, le=500)
    """Hard capacity of one pod: LiveKit assigns no more calls to a pod that has this many."""
    scale_down_stabilization_seconds: int = Field(default=600, ge=0, le=3600)
    """How long call volume must stay low before pods are removed."""
    executor: Literal["process", "thread"] = "process"
    """How a worker pod runs its calls (livekit-agents' job executor). ``process``: each call
    in a process of its own, forked ahead of the call from one that holds the libraries and
    the knowledge bases' embedding models (shared by all, copy-on-write); a call that crashes
    ends alone, but each process loads the local speech and language models (whisper,
    ``local``, piper) itself. ``thread``: the calls run as threads of the worker's one process
    and share everything it has loaded, so each call costs less memory and CPU
    (docs/benchmarks.md, "Capacity"); a call that crashes the process ends every call of the
    pod."""

    @property
    def scales_to_zero(self) -> bool:
        """No worker running is this agent's idle state (KEDA scales it to zero), not an outage;
        a call then waits for one."""
        return self.min_replicas == 0 and self.autoscaler == "keda"

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must be less than or equal to maxReplicas",
            check=lambda s: s.min_replicas <= s.max_replicas,
            field_path=".minReplicas",
        ),
        Rule(
            cel="self.targetCallsPerPod <= self.maxCallsPerPod",
            message="targetCallsPerPod must be less than or equal to maxCallsPerPod",
            check=lambda s: s.target_calls_per_pod <= s.max_calls_per_pod,
            field_path=".targetCallsPerPod",
        ),
    )
