"""How a command's process ends: at once on an early SIGTERM, and without the interpreter's
finalization once native threads run in it."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

TERMINATED = 128 + signal.SIGTERM
"""The exit code of a command stopped by SIGTERM before it could finish its work."""


def stop_at_once(exit_code: int, before_exit: Callable[[], None] = lambda: None) -> None:
    """Until a command installs its own SIGTERM handler (the worker's drains its calls), stop at
        once: in a container this process is PID 1, for which the kernel ignores a signal that has
        no handler, and a pod deleted while it starts (a scale-down or a rollout that catches it
        loading its models) would wait out its whole termination grace period. ``before_exit`` runs
    first (the command's own files)."""

    def stop(_signum: int, _frame: object) -> None:
        print("kubevox-agent: SIGTERM: stopping", file=sys.stderr, flush=True)
        before_exit()
        os._exit(exit_code)

    signal.signal(signal.SIGTERM, stop)


def native_threads_started() -> bool:
    """Whether LiveKit's native runtime (its FFI, with a pool of tokio threads) runs in this
    process. Its threads call back into Python; one that does while the interpreter finalizes
    aborts the process (SIGABRT, "panic in a function that cannot unwind") after its work is
    done, and a test suite that has failed a case exits -6 instead of 1."""
    ffi = sys.modules.get("livekit.rtc._ffi_client")
    return ffi is not None and getattr(ffi.FfiClient, "_instance", None) is not None


def exit_without_finalizing(exit_code: int) -> None:
    """Flush what the process has to say and leave without the interpreter's finalization, where
    native libraries' threads (LiveKit's FFI, ONNX Runtime) and our daemon threads can crash a
    process whose work is done."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def exit_process(exit_code: int) -> None:
    """The end of ``kubevox-agent``: the usual exit, unless LiveKit's native threads run."""
    if native_threads_started():
        exit_without_finalizing(exit_code)
    sys.exit(exit_code)
