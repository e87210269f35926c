"""A deduplicating work queue with per-key exponential backoff, drained by N workers.

kopf is edge-triggered; every event on a VoiceAgent, KnowledgeBase or one of their children
only enqueues the owner's key, and a worker reconciles the whole owner from the cache (level-
based). A key queued twice runs once; a key changed while it runs runs again afterwards.

Two lanes: ``urgent`` keys (a spec nobody has reconciled yet: someone waits for it) are taken
before the rest (children's status following a rollout, resyncs), so a burst of creations is not
queued behind the status updates of the agents created just before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .metrics import QUEUE_DEPTH

Key = tuple[str, str, str]  # (kind, namespace, name)
Reconciler = Callable[[Key], Awaitable[float | None]]
"""Returns None when done, or seconds after which to look again (a timer)."""

log = logging.getLogger("kubevox.queue")


class WorkQueue:
    def __init__(
        self,
        reconcile: Reconciler,
        workers: int = 8,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
    ) -> None:
        self._reconcile = reconcile
        # One token per queued key; the key itself waits in its lane.
        self._tokens: asyncio.Queue[None] = asyncio.Queue()
        self._urgent: deque[Key] = deque()
        self._normal: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._running: set[Key] = set()
        self._dirty: set[Key] = set()
        self._dirty_urgent: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._workers = workers
        self.retry_base = retry_base
        self.retry_max = retry_max

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for t in self._timers.values():
            t.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def add(self, key: Key, *, urgent: bool = False) -> None:
        if key in self._running:
            self._dirty.add(key)
            if urgent:
                self._dirty_urgent.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            (self._urgent if urgent else self._normal).append(key)
            self._tokens.put_nowait(None)
            QUEUE_DEPTH.set(len(self._queued))
        elif urgent and key in self._normal:
            self._normal.remove(key)  # promoted; its token stays
            self._urgent.append(key)

    def add_after(self, key: Key, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            if old.when() <= asyncio.get_running_loop().time() + delay:
                self._timers[key] = old  # an earlier look is already planned
                return
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def idle(self) -> bool:
        return not self._queued and not self._running

    async def _work(self) -> None:
        while True:
            await self._tokens.get()
            key = self._urgent.popleft() if self._urgent else self._normal.popleft()
            self._queued.discard(key)
            QUEUE_DEPTH.set(len(self._queued))
            self._running.add(key)
            try:
                again = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                n = self._failures.get(key, 0)
                self._failures[key] = n + 1
                delay = min(self.retry_base * 2**n, self.retry_max)
                # The first failure is logged fully; repeats only briefly (no exception spam).
                log.warning(
                    "reconcile of %s %s/%s failed (attempt %d), retrying in %.0fs: %s",
                    *key,
                    n + 1,
                    delay,
                    exc,
                    exc_info=n == 0 and not getattr(exc, "expected", False),
                )
                self.add_after(key, delay)
            else:
                if again is not None:
                    self.add_after(key, again)
            finally:
                self._running.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    urgent = key in self._dirty_urgent
                    self._dirty_urgent.discard(key)
                    self.add(key, urgent=urgent)

    def backoff(self, key: Key) -> float:
        """Delay for a retry of ``key`` that is not an exception (e.g. a Secret is missing)."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return float(min(self.retry_base * 2**n, self.retry_max))

    def reset(self, key: Key) -> None:
        """The object is healthy: its next failure starts the backoff afresh."""
        self._failures.pop(key, None)

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()
