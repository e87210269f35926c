"""The load a worker reports to LiveKit, which offers a call only to workers below the threshold
(1.0 here): max(calls / maxCallsPerPod, CPU, memory), so a pod is full at maxCallsPerPod calls,
with its CPU saturated, or near its memory limit (where the kernel would kill it, and every call
in it, for the next call's memory).

The CPU part is smoothed. A pod's CPU is saturated for a second or two whenever a local model
works (a reply generated, a process loading its models for the next call); a call refused then
waits for the operator to hand it out again (seconds of silence for the caller), although the
pod has room. Averaged over a few seconds, only a CPU that stays saturated fills the pod.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

# The same shares size the pods (the operator's default resources and ResourcesFit).
from kubevox_api.sizing import CPU_FULL, MEMORY_FULL

log = logging.getLogger("kubevox.worker")

LOAD_THRESHOLD = 1.0
"""LiveKit's threshold: a worker at this load takes no new call."""
CPU_SMOOTHING_SECONDS = 5.0
"""Time constant of the CPU's moving average: a step to 100 % shows fully after about 3x this."""


def compute_load(
    active_calls: int,
    max_calls: int,
    cpu: float,
    cpu_weight: float = 1.0,
    memory: float | None = None,
) -> float:
    """max(active/maxCallsPerPod, cpu / CPU_FULL, memory / MEMORY_FULL) kept within 0..1
    (LiveKit breaks on loads above 1); ``cpu`` is the smoothed CPU, ``memory`` the share of the
    pod's memory limit in use (None: no limit).

    ``cpu_weight`` scales the CPU part: 0 on a shared development machine, where the CPU is
    busy with everything else (the caller, the tests) and the call count is the capacity.
    """
    parts = [active_calls / max(max_calls, 1), cpu / CPU_FULL * cpu_weight, 0.0]
    if memory is not None:
        parts.append(memory / MEMORY_FULL)
    return min(max(parts), 1.0)


def smoothed(previous: float | None, sample: float, elapsed: float) -> float:
    """An exponential moving average, whatever the time between samples: LiveKit asks for the
    load every 0.5 s and again before answering each job request."""
    if previous is None:
        return sample
    weight = 1.0 - math.exp(-max(elapsed, 0.0) / CPU_SMOOTHING_SECONDS)
    return previous + weight * (sample - previous)


class WorkerLoad:
    """The load of one worker, measured from its active calls and its CPU (called from threads:
    LiveKit runs the load function in an executor)."""

    def __init__(
        self,
        max_calls: int,
        cpu_weight: float,
        cpu_sample: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        memory_sample: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.max_calls = max_calls
        self.cpu_weight = cpu_weight
        self._cpu_sample = cpu_sample
        self._memory_sample = memory_sample
        self._clock = clock
        self._lock = threading.Lock()
        self._cpu: float | None = None
        self._at = 0.0
        self.value = 0.0
        """The load last reported (exported as a gauge)."""

    def measure(self, active_calls: int) -> float:
        sample = self._cpu_sample() if self.cpu_weight > 0 else 0.0
        memory = self._memory_sample()
        with self._lock:
            now = self._clock()
            self._cpu = smoothed(self._cpu, sample, now - self._at)
            self._at = now
            was_full = self.value >= LOAD_THRESHOLD
            self.value = compute_load(
                active_calls, self.max_calls, self._cpu, self.cpu_weight, memory
            )
            full = self.value >= LOAD_THRESHOLD
            cpu = self._cpu
        if full != was_full:
            # Why calls go elsewhere (or wait) is the first question when they do.
            log.info(
                "worker full: taking no new call" if full else "worker has room for a call",
                extra={
                    "active_calls": active_calls,
                    "max_calls": self.max_calls,
                    "cpu": cpu,
                    "memory": memory,
                },
            )
        return self.value
