"""How ``kubevox-agent`` ends: with its command's exit code, and without the interpreter's
finalization once LiveKit's native threads run (a suite that failed a case exited -6, SIGABRT
from LiveKit's FFI during finalization, instead of 1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

FINALIZED = "finalized"


def _exit_with(code: int, *, start_livekit: bool) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import atexit
        from agent_runtime.early_stop import exit_process
        atexit.register(lambda: print({FINALIZED!r}, flush=True))
        if {start_livekit}:
            from livekit.rtc._ffi_client import FfiClient
            FfiClient.instance  # the native runtime and its threads
        print("said before the exit")
        exit_process({code})
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("code", [0, 1])
def test_with_livekit_running_the_exit_skips_finalization(code: int) -> None:
    proc = _exit_with(code, start_livekit=True)
    assert proc.returncode == code, proc.stderr
    assert "said before the exit" in proc.stdout  # flushed, not lost with the buffers
    assert FINALIZED not in proc.stdout


def test_without_livekit_the_exit_is_the_usual_one() -> None:
    proc = _exit_with(1, start_livekit=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == ["said before the exit", FINALIZED]


def test_the_command_exits_with_its_code() -> None:
    # A ConfigError is exit 2: main's code reaches the process.
    proc = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "validate", "-f", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "kubevox-agent: /nonexistent.yaml: cannot read" in proc.stderr
