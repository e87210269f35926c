"""A draining worker leaves once no call is left for the grace period, whatever livekit's own
shutdown is doing (agent_runtime/drained_exit.py); never while a call goes on or before a
drain."""

from __future__ import annotations

import threading

from agent_runtime.drained_exit import DrainedExit


class World:
    def __init__(self) -> None:
        self.now = 0.0
        self.draining = False
        self.calls = 0

    def watch(self, grace: float = 30.0) -> DrainedExit:
        return DrainedExit(lambda: self.draining, lambda: self.calls, grace, lambda: self.now)


def test_due_only_after_a_grace_period_of_draining_without_calls() -> None:
    w = World()
    d = w.watch()
    w.calls = 0
    assert not d.due()  # not draining: a worker between calls
    w.now = 100
    assert not d.due()
    w.draining, w.calls = True, 2
    assert not d.due()  # live calls are spared
    w.now = 200
    assert not d.due()
    w.calls = 0
    assert not d.due()  # the grace starts now
    w.now = 229
    assert not d.due()
    w.calls = 1  # a call still launching: the grace starts again
    w.now = 230
    assert not d.due()
    w.calls = 0
    w.now = 231
    assert not d.due()
    w.now = 261
    assert d.due()


def test_the_watch_leaves_once_due_from_its_own_thread() -> None:
    w = World()
    w.draining = True
    left = threading.Event()
    thread = w.watch(grace=0.0).watch(left.set, every=0.01)
    assert left.wait(5)
    thread.join(5)
    assert not thread.is_alive()
