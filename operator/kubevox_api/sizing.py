"""How big a worker pod must be to hold its calls, from figures measured by bench/capacity.py
(docs/benchmarks.md, "Capacity"): one source for the schema's words, the operator's default
resources and its ResourcesFit condition, and the worker's own idea of when it is full."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Stack = Literal["cloud", "offline"]
Executor = Literal["process", "thread"]

CPU_FULL = 0.95
"""Smoothed CPU (0..1 of what the pod may use) at which the worker counts as full: an average
that only approaches 1 never reaches it."""
MEMORY_FULL = 0.90
"""Share of the pod's memory limit in use (its working set) at which the worker counts as full:
the rest is the headroom of the calls it already has."""
WARM_JOBS = 2
"""Jobs a worker keeps started ahead of its calls (at most maxCallsPerPod): with the ``process``
executor each is a process with its libraries and models loaded, so that a call is answered
without waiting for one to start. A fixed number, not the node's cores: a pod's memory must not
depend on the node it lands on."""
MEMORY_STEP_MIB = 64
CPU_STEP_MILLICORES = 50


@dataclass(frozen=True)
class Footprint:
    """What one worker pod uses, for one kind of providers and one executor."""

    base_mib: int
    """Working set of the worker process with no call."""
    per_job_mib: int
    """Each job process's (``process``: every call and every warm job has one); 0 for threads."""
    per_call_mib: int
    """Each call's own, beyond its job process (audio buffers, VAD state, the conversation)."""
    base_cores: float
    """CPU of a worker with calls, beyond the calls' own (its event loop, LiveKit's threads)."""
    cores_per_call: float
    """CPU of each call talking (speech detection, audio, and the models when they are local)."""

    def memory_mib(self, calls: int, max_calls: int) -> int:
        """Working set with ``calls`` calls in a pod that keeps its warm jobs for ``max_calls``."""
        jobs = calls + min(WARM_JOBS, max_calls) if self.per_job_mib else 0
        return self.base_mib + jobs * self.per_job_mib + calls * self.per_call_mib

    def cores(self, calls: int) -> float:
        return self.base_cores + calls * self.cores_per_call


FOOTPRINTS: dict[tuple[Stack, Executor], Footprint] = {
    # bench/capacity.py --stacks cloud offline, 2026-12-02 07:45 (docs/benchmarks.md,
    # "Capacity"): the least-squares line of each run's working set and CPU over its levels,
    # raised to pass over every point. With ``thread`` and cloud providers the working set did
    # not grow with the calls (below what the measure resolves): 16 MiB per call is a margin,
    # not a measure. A job process's 58 MiB (cloud) is its call's own: its libraries and the
    # knowledge base's embedding model are shared from livekit's forkserver.
    ("cloud", "process"): Footprint(515, 58, 0, 0.09, 0.12),
    ("cloud", "thread"): Footprint(545, 0, 16, 0.09, 0.10),
    ("offline", "process"): Footprint(360, 440, 0, 0.16, 0.29),
    ("offline", "thread"): Footprint(860, 0, 120, 0.22, 0.22),
}
"""``offline`` is any agent with a local provider (whisper, local, piper): their models and
their CPU are in the worker, loaded once per job process with ``process``, once per pod with
``thread``."""


def stack_of(offline: bool) -> Stack:
    return "offline" if offline else "cloud"


@dataclass(frozen=True)
class PodSize:
    """The resources a pod needs for its calls: CPU below CPU_FULL of ``cores`` and its working
    set below MEMORY_FULL of ``memory_limit_mib`` at maxCallsPerPod calls."""

    millicores: int
    memory_request_mib: int
    memory_limit_mib: int

    @property
    def cpu(self) -> str:
        return f"{self.millicores}m"

    @property
    def memory_request(self) -> str:
        return f"{self.memory_request_mib}Mi"

    @property
    def memory_limit(self) -> str:
        return f"{self.memory_limit_mib}Mi"


def _up(value: float, step: int) -> int:
    return step * math.ceil(value / step - 1e-9)


def pod_size(offline: bool, executor: Executor, max_calls: int) -> PodSize:
    """Requests and limits that hold ``max_calls`` calls: the memory request is the working set
    at that many calls, the limit leaves MEMORY_FULL's headroom above it (the worker takes no
    call past it); the CPU request is the CPU of that many calls over CPU_FULL."""
    f = FOOTPRINTS[(stack_of(offline), executor)]
    working_set = f.memory_mib(max_calls, max_calls)
    return PodSize(
        millicores=_up(1000 * f.cores(max_calls) / CPU_FULL, CPU_STEP_MILLICORES),
        memory_request_mib=_up(working_set, MEMORY_STEP_MIB),
        memory_limit_mib=_up(working_set / MEMORY_FULL, MEMORY_STEP_MIB),
    )


def calls_held(
    offline: bool, executor: Executor, max_calls: int, cores: float, working_set_mib: float
) -> int:
    """How many calls, at most ``max_calls``, a pod holds by the same figures when its calls may
    use ``cores`` of CPU and its working set may reach ``working_set_mib``."""
    f = FOOTPRINTS[(stack_of(offline), executor)]
    held = max_calls
    while held > 0 and (
        f.cores(held) > cores + 1e-9 or f.memory_mib(held, max_calls) > working_set_mib + 1e-9
    ):
        held -= 1
    return held


def describe() -> str:
    """The sizing rule in words, with its figures (the schema's description of resources)."""
    rows = "; ".join(
        f"{stack} providers with the {executor} executor: {f.base_mib} MiB"
        + (f" + {f.per_job_mib} MiB per call and per warm job" if f.per_job_mib else "")
        + (f" + {f.per_call_mib} MiB per call" if f.per_call_mib else "")
        + f", {f.base_cores:g} + {f.cores_per_call:g} cores per call"
        for (stack, executor), f in FOOTPRINTS.items()
    )
    return (
        "CPU and memory of each worker pod. An amount left unset is sized from the spec for "
        "scaling.maxCallsPerPod calls: requests.cpu so that they use at most "
        f"{CPU_FULL:.0%} of it, requests.memory their working set and limits.memory that over "
        f"{MEMORY_FULL:.0%} (a worker whose working set reaches {MEMORY_FULL:.0%} of its "
        "limit takes no new call); no CPU limit, which would throttle audio. The figures were "
        f"measured by bench/capacity.py on one core (docs/benchmarks.md, Capacity): {rows}; "
        f"{WARM_JOBS} jobs are kept warm (fewer when maxCallsPerPod is). An agent with any "
        "local provider (whisper, local, piper) is sized as offline. An amount set here wins; "
        "when the resources hold fewer calls than maxCallsPerPod by the same figures, the "
        "condition ResourcesFit is False and a Warning Event says how many they hold."
    )
