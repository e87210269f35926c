"""The AgentServer a worker makes (issue 20): how many jobs it keeps warm, and the modules its
job processes inherit from livekit's forkserver instead of importing each."""

from __future__ import annotations

import importlib

import pytest
from kubevox_api.sizing import WARM_JOBS

from agent_runtime import worker
from tests.support.runtime import make_config


def server(max_calls: int = 4) -> object:
    cfg = make_config({"scaling": {"maxCallsPerPod": max_calls, "targetCallsPerPod": 1}})
    return worker.make_server(cfg, worker.worker_load(cfg), health_port=0)


def test_job_processes_inherit_the_calls_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(worker.PRELOAD_ENV, raising=False)
    assert server()._preload_modules == list(worker.JOB_MODULES)  # type: ignore[attr-defined]
    # The forkserver skips a module it cannot import without a word: each must import.
    for name in worker.JOB_MODULES:
        importlib.import_module(name)
    monkeypatch.setenv(worker.PRELOAD_ENV, "0")  # as before, for the benchmark's comparison
    assert server()._preload_modules == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("max_calls", [1, 2, 8])
def test_warm_jobs_are_the_sizings_whatever_the_cores(max_calls: int) -> None:
    warm = server(max_calls)._num_idle_processes  # type: ignore[attr-defined]
    assert warm == min(max_calls, WARM_JOBS)
