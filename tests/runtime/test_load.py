"""The load reported to LiveKit, and the parent-side active-calls gauge."""

from __future__ import annotations

import logging

import pytest

from agent_runtime import metrics
from agent_runtime.load import (
    CPU_FULL,
    CPU_SMOOTHING_SECONDS,
    LOAD_THRESHOLD,
    MEMORY_FULL,
    WorkerLoad,
    compute_load,
    smoothed,
)


@pytest.mark.parametrize(
    ("calls", "max_calls", "cpu", "load"),
    [
        (0, 6, 0.19, 0.2),  # idle: CPU decides, full at CPU_FULL
        (3, 6, 0.1, 0.5),  # calls decide
        (6, 6, 0.2, 1.0),  # full at maxCallsPerPod (the threshold is 1.0)
        (9, 6, 0.2, 1.0),  # never above 1: LiveKit's dispatch breaks on loads > 1
        (1, 6, 1.7, 1.0),  # a misreported CPU is clamped too
        (0, 6, CPU_FULL, 1.0),
        (0, 6, -0.5, 0.0),
    ],
)
def test_compute_load(calls: int, max_calls: int, cpu: float, load: float) -> None:
    assert compute_load(calls, max_calls, cpu) == pytest.approx(load)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(load: WorkerLoad, clock: Clock, calls: int, seconds: float) -> list[float]:
    """The loads LiveKit reads over ``seconds``, one every 0.5 s."""
    out = []
    for _ in range(int(seconds / 0.5)):
        clock.now += 0.5
        out.append(load.measure(calls))
    return out


def test_a_burst_of_cpu_leaves_room_and_a_saturated_cpu_fills_the_pod(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kubevox.worker")
    cpu = [0.1]
    clock = Clock()
    load = WorkerLoad(max_calls=2, cpu_weight=1.0, cpu_sample=lambda: cpu[0], clock=clock)
    run(load, clock, 1, 10)  # one call, a quiet CPU
    cpu[0] = 1.0  # two seconds of a local model at work (a reply, a process warming up)
    assert max(run(load, clock, 1, 2)) < LOAD_THRESHOLD
    cpu[0] = 0.2
    run(load, clock, 1, 10)
    cpu[0] = 1.0  # saturated for good: full within ~3 time constants
    loads = run(load, clock, 1, 4 * CPU_SMOOTHING_SECONDS)
    assert loads[0] < LOAD_THRESHOLD
    assert loads[-1] == LOAD_THRESHOLD
    assert "worker full: taking no new call" in caplog.text
    cpu[0] = 0.1
    assert run(load, clock, 1, 4 * CPU_SMOOTHING_SECONDS)[-1] == pytest.approx(0.5, abs=0.05)
    assert "worker has room for a call" in caplog.text


def test_the_call_count_fills_the_pod_at_once_and_weight_0_ignores_the_cpu() -> None:
    clock = Clock()
    load = WorkerLoad(max_calls=2, cpu_weight=0.0, cpu_sample=lambda: 1.0, clock=clock)
    assert run(load, clock, 1, 10)[-1] == 0.5
    assert run(load, clock, 2, 0.5) == [1.0]


@pytest.mark.parametrize(
    ("memory", "load"),
    [
        (None, 0.25),  # no memory limit: the calls decide
        (0.45, 0.5),  # half of MEMORY_FULL
        (MEMORY_FULL, 1.0),  # near the limit: full, with one call of four
        (1.3, 1.0),
    ],
)
def test_memory_near_the_pods_limit_fills_it(memory: float | None, load: float) -> None:
    assert compute_load(1, 4, 0.0, memory=memory) == pytest.approx(load)


def test_memory_fills_the_pod_at_once_whatever_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kubevox.worker")
    clock = Clock()
    used = [0.5]
    load = WorkerLoad(
        max_calls=8,
        cpu_weight=1.0,
        cpu_sample=lambda: 0.1,
        clock=clock,
        memory_sample=lambda: used[0],
    )
    assert run(load, clock, 1, 2)[-1] == pytest.approx(0.5 / MEMORY_FULL)
    used[0] = 0.93  # the working set nears the limit: no smoothing, the next call would not fit
    assert run(load, clock, 1, 0.5) == [LOAD_THRESHOLD]
    (full,) = [r for r in caplog.records if r.getMessage() == "worker full: taking no new call"]
    assert full.__dict__["memory"] == 0.93  # the log says why


def test_smoothing_does_not_depend_on_how_often_it_is_asked() -> None:
    often = 0.0
    for _ in range(10):
        often = smoothed(often, 1.0, 0.5)
    assert smoothed(0.0, 1.0, 5.0) == pytest.approx(often)
    assert smoothed(None, 0.7, 0.0) == 0.7


def test_parent_collector_reports_exact_calls_at_scrape_time() -> None:
    active = [0]
    parent = metrics.ParentCollector(
        "front-desk", "clinic", active_calls=lambda: active[0], load=lambda: 0.25
    )
    registry = metrics.scrape_registry(parent)
    labels = {"agent": "front-desk", "namespace": "clinic"}
    assert registry.get_sample_value(metrics.ACTIVE_CALLS, labels) == 0
    active[0] = 3
    assert registry.get_sample_value(metrics.ACTIVE_CALLS, labels) == 3
    assert registry.get_sample_value(metrics.WORKER_LOAD, labels) == 0.25
