"""The worker's /metrics in multiprocess mode (agent_runtime.metrics.scrape_registry): a job
process's file caught while it is being made (empty, or not yet sized) does not fail the scrape:
the parent's gauges, the autoscaler's signal, and every other process's metrics are served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from agent_runtime import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_a_file_being_made_leaves_the_scrape_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job process that finished a call: its counters are in its own file.
    code = (
        "from agent_runtime import metrics\n"
        "metrics.calls_total.labels('front-desk', 'clinic', 'abc', 'completed').inc()\n"
    )
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "operator")]),
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    # Another starting: its file exists, empty, or sized but with nothing written yet.
    (tmp_path / "counter_4242.db").write_bytes(b"")
    (tmp_path / "histogram_4243.db").write_bytes(b"\x01\x00")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    parent = metrics.ParentCollector("front-desk", "clinic", lambda: 2, lambda: 0.5)

    registry = metrics.scrape_registry(parent)
    text = generate_latest(registry).decode()

    labels = {"agent": "front-desk", "namespace": "clinic"}
    assert registry.get_sample_value(metrics.ACTIVE_CALLS, labels) == 2
    done = labels | {"config_hash": "abc", "outcome": "completed"}
    assert registry.get_sample_value(metrics.CALLS_TOTAL, done) == 1
    assert "kubevox_worker_load" in text
