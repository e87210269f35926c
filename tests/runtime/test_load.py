"""The load reported to LiveKit, and the parent-side active-calls gauge."""

from __future__ import annotations

import pytest

from agent_runtime import metrics
from agent_runtime.worker import compute_load


@pytest.mark.parametrize(
    ("calls", "max_calls", "cpu", "load"),
    [
        (0, 6, 0.1, 0.1),  # idle: CPU decides
        (3, 6, 0.1, 0.5),  # calls decide
        (6, 6, 0.2, 1.0),  # full at maxCallsPerPod (the threshold is 1.0)
        (9, 6, 0.2, 1.0),  # never above 1: LiveKit's dispatch breaks on loads > 1
        (1, 6, 1.7, 1.0),  # a misreported CPU is clamped too
        (0, 6, -0.5, 0.0),
    ],
)
def test_compute_load(calls: int, max_calls: int, cpu: float, load: float) -> None:
    assert compute_load(calls, max_calls, cpu) == pytest.approx(load)


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
