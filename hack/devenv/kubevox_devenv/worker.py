"""Run `kubevox-agent start` as a real worker process for tests, benchmarks and `make run`."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .procs import ManagedProcess, free_port, wait_for

_REGISTERED = re.compile(r"^kubevox_worker_registered\{[^}]*\} 1\.0$", re.M)
_ACTIVE = re.compile(r"^kubevox_active_calls\{[^}]*\} ([0-9.]+)$", re.M)


def scrape(host: str, port: int) -> str:
    """A worker's /metrics (Prometheus text), a process on the host or a pod."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


def registered_in(metrics: str) -> bool:
    """The worker says it is registered with LiveKit (its kubevox_worker_registered)."""
    return bool(_REGISTERED.search(metrics))


def active_calls_in(metrics: str) -> int:
    """The calls a worker says it holds (its kubevox_active_calls, Prometheus text)."""
    match = _ACTIVE.search(metrics)
    return int(float(match.group(1))) if match else 0


def call_records(log_lines: Iterable[str]) -> list[dict[str, Any]]:
    """The end-of-call records in a worker's log (its JSON lines "call ended"), in order."""
    records = []
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a line some library printed, not the JSON log
            continue
        call = entry.get("call") if isinstance(entry, dict) else None
        if isinstance(call, dict):
            records.append(call)
    return records


def call_record(log_lines: Iterable[str], room: str) -> dict[str, Any] | None:
    """The record of the call in ``room``, if it is logged yet: a worker logs it once the
    call's job has shut down."""
    return next((c for c in call_records(log_lines) if c.get("room") == room), None)


@dataclass
class AgentWorker:
    """One worker process: registered with LiveKit once :meth:`start` returns."""

    config: Path
    env: dict[str, str]
    log: Path
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    launcher: list[str] = field(default_factory=list)
    """A prefix of the command line (kubevox_devenv/cgroup.py's, to start it in a cgroup)."""

    def start(self, timeout: float = 180.0) -> AgentWorker:
        argv = [
            *self.launcher,
            sys.executable,
            "-m",
            "agent_runtime",
            "start",
            "--config",
            str(self.config),
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
        ]
        env = {**os.environ, **self.env}
        self.process = ManagedProcess("kubevox-agent", argv, self.log, env=env)
        self.process.start()
        tail = partial(self.process.log_tail, 20)
        try:
            wait_for(
                "kubevox-agent (registered)", self.registered, timeout, self.process.alive, tail
            )
        except BaseException:
            self.stop()
            raise
        return self

    def metrics(self) -> str:
        return scrape("127.0.0.1", self.metrics_port)

    def registered(self) -> bool:
        return registered_in(self.metrics())

    def active_calls(self) -> int:
        return active_calls_in(self.metrics())

    def terminate(self) -> None:
        """SIGTERM, as the kubelet sends on a rollout: the worker drains."""
        if self.process is not None and self.process.popen is not None:
            self.process.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        assert self.process.popen is not None
        return self.process.popen.wait(timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
