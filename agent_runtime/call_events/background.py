"""The worker's delivery of its agent's outbox (and of its spooled recordings), in a thread of
the worker's parent process.

livekit's production loop owns the parent's event loop (``_run_worker``), so the delivery runs
its own loop in a daemon thread. On the way out (drained, or stopped) it is asked to stop and
given a few seconds to finish what it holds; whatever it leaves pending is taken over by
another worker of the agent (``claim_idle_seconds``), or by the next one to start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Protocol

log = logging.getLogger("kubevox.call_events")

FLUSH_SECONDS = 5.0


class Deliverer(Protocol):
    """A delivery loop: runs until ``stop`` is set, then is closed."""

    async def run(self, stop: asyncio.Event) -> None: ...

    async def aclose(self) -> None: ...


class DeliveryThread:
    def __init__(self, delivery: Deliverer) -> None:
        self.delivery = delivery
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        name = type(delivery).__name__
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self.delivery.run(self._stop)
        except Exception:
            log.exception("a delivery stopped", extra={"delivery": type(self.delivery).__name__})
        finally:
            await self.delivery.aclose()

    def stop(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        """Ask the delivery to stop, and wait for it at most ``flush_seconds``."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(flush_seconds)
