"""Starting the local components: a process that dies while starting, or never gets ready, is
named with the end of its log, so that a failure in CI says why (a port taken, a bad flag, a
wait that never ends) without the log file."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubevox_devenv.procs import ManagedProcess, wait_for


def _start_failure(tmp_path: Path, name: str, script: str, timeout: float) -> Exception:
    """What wait_for raises for ``name`` running ``script`` that never reports ready."""
    proc = ManagedProcess(name, ["sh", "-c", script], tmp_path / f"{name}.log")
    proc.start()
    try:
        with pytest.raises((RuntimeError, TimeoutError)) as failed:
            wait_for(name, lambda: False, timeout, proc.alive, proc.log_tail)
    finally:
        proc.stop()
    return failed.value


def test_a_process_that_dies_while_starting_is_named_with_its_logs_end(tmp_path: Path) -> None:
    script = "echo starting; echo 'listen tcp 127.0.0.1:2379: bind: address already in use'; exit 1"
    failure = _start_failure(tmp_path, "etcd", script, 10)
    assert isinstance(failure, RuntimeError)
    assert str(failure).startswith("etcd exited while starting:")
    assert "bind: address already in use" in str(failure)


def test_a_process_that_never_gets_ready_is_named_with_its_logs_end(tmp_path: Path) -> None:
    script = "echo 'waiting for the lease'; sleep 30"
    failure = _start_failure(tmp_path, "kube-controller-manager", script, 1)
    assert isinstance(failure, TimeoutError)
    assert str(failure).startswith("kube-controller-manager not ready after 1s")
    assert "waiting for the lease" in str(failure)
