"""SIGTERM before a command has installed its own handler: stop at once."""

from __future__ import annotations

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
