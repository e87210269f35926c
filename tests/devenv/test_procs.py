"""Starting the local components: a process that dies while starting is named, with the end of
its log, so that a failure in CI says why (a port taken, a bad flag) without the log file."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubevox_devenv.procs import ManagedProcess, wait_for


def test_a_process_that_dies_while_starting_is_named_with_its_logs_end(tmp_path: Path) -> None:
    script = "echo starting; echo 'listen tcp 127.0.0.1:2379: bind: address already in use'; exit 1"
    proc = ManagedProcess("etcd", ["sh", "-c", script], tmp_path / "etcd.log")
    proc.start()
    try:
        with pytest.raises(RuntimeError) as failed:
            wait_for("etcd", lambda: False, 10, proc.alive, proc.log_tail)
    finally:
        proc.stop()
    assert str(failed.value).startswith("etcd exited while starting:")
    assert "bind: address already in use" in str(failed.value)


def test_a_process_that_never_gets_ready_is_named_with_its_logs_end(tmp_path: Path) -> None:
    script = "echo 'waiting for the lease'; sleep 30"
    proc = ManagedProcess("kube-controller-manager", ["sh", "-c", script], tmp_path / "kcm.log")
    proc.start()
    try:
        with pytest.raises(TimeoutError) as failed:
            wait_for("kube-controller-manager", lambda: False, 1, proc.alive, proc.log_tail)
    finally:
        proc.stop()
    assert str(failed.value).startswith("kube-controller-manager not ready after 1s")
    assert "waiting for the lease" in str(failed.value)
