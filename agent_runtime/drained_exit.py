"""Leaving a drained worker once no call is left.

On SIGTERM livekit drains: no new calls, and its drain returns when the calls' jobs are done;
then kubevox-agent start leaves (commands/start.py). That drain also waits for job launches and
job processes to wind down, and was seen to hang after the last call had ended (CI, 2026-11-30:
both calls over, the worker still there two minutes later), which keeps a pod Terminating for
its whole grace period (drainTimeoutSeconds). This watch ends the process once the worker has
been draining with no call for ``grace`` seconds: nothing is left to spare."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("kubevox.worker")

DRAINED_GRACE_SECONDS = 30.0
"""How long a draining worker with no call waits for livekit's own shutdown before leaving."""


class DrainedExit:
    def __init__(
        self,
        draining: Callable[[], bool],
        calls: Callable[[], int],
        grace: float = DRAINED_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._draining = draining
        self._calls = calls
        self._grace = grace
        self._clock = clock
        self._idle_since: float | None = None

    def due(self) -> bool:
        """Whether the worker has been draining with no call for the whole grace period."""
        if not self._draining() or self._calls() > 0:
            self._idle_since = None
            return False
        now = self._clock()
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= self._grace

    def watch(self, leave: Callable[[], None], every: float = 1.0) -> threading.Thread:
        """Checks every ``every`` seconds, in a daemon thread (livekit's loop may be the one
        that is stuck), and calls ``leave`` once due."""

        def run() -> None:
            while not self.due():
                time.sleep(every)
            log.warning(
                "drained: no call for %.0f s, but livekit's shutdown has not returned; leaving",
                self._grace,
            )
            leave()

        thread = threading.Thread(target=run, name="drained-exit", daemon=True)
        thread.start()
        return thread
