"""Which pool of a canary rollout takes a new call.

During a canary (``spec.rollout.strategy: Canary``) two pools of workers register under the same
LiveKit agent name: the stable one and ``<agent>-canary``. LiveKit offers a call to one worker
at a time and, when a worker answers "not available", to another (never twice to the same). So
each worker takes a call only if its room falls in its pool's share: a room's bucket is a hash of
its name, 0..99, the same in every pod; the canary takes buckets below ``canaryWeight``, the
stable pool leaves buckets below ``stableYield`` to it. The operator writes both numbers to
ConfigMap ``<agent>-rollout``, which kubelet copies into every pod a sync later (not at once, nor
at the same moment in each pod): it moves the canary's share first when a share grows and the
stable one first when it shrinks, so that no call is refused by both pools. A call that every
worker refused anyway (full pods) is handed to LiveKit again by the operator (waiting.py).

The canary's share is a ceiling on its exposure, never a reason for a caller to wait: its pool is
small and not autoscaled, so a call of its share that found it full (every worker refused, and
the operator offered it again) is taken by the stable pool once its room is OVERFLOW_SECONDS
old; the worker's participant then says so (``kubevox.dev/overflow``). Never the other way: a
call of the stable pool's share waits for the stable pool (its autoscaler counts waiting calls)
rather than meet a configuration still on trial.

The file is read for each call request: a few hundred bytes, and it must follow kubelet's copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubevox_api import contract
from livekit.agents import JobRequest

log = logging.getLogger("kubevox.worker")

SPLIT_PATH = Path(contract.ROLLOUT_DIR) / contract.ROLLOUT_FILE
OVERFLOW_SECONDS = 10.0
"""A room of the canary's share this old has waited: LiveKit offers a call at once, and again
only when the operator hands it out anew (waiting.py: after 5 s without an agent)."""


def room_bucket(room: str) -> int:
    """0..99, uniform over room names, the same in every process and pod."""
    return int.from_bytes(hashlib.sha256(room.encode()).digest()[:8], "big") % 100


@dataclass(frozen=True)
class Split:
    canary_weight: int = 0
    stable_yield: int = 0

    def takes(self, room: str, canary: bool) -> bool:
        bucket = room_bucket(room)
        return bucket < self.canary_weight if canary else bucket >= self.stable_yield

    def overflows(self, room: str, canary: bool, waited: float) -> bool:
        """Whether a stable worker takes ``room`` of the canary's share, which has waited
        ``waited`` seconds."""
        return not canary and waited >= OVERFLOW_SECONDS and not self.takes(room, canary)


def read_split(path: Path) -> Split:
    """The split kubelet last copied; none (the stable pool takes every call) when there is no
    file (no rollout), or one that cannot be read (logged: better a call on the stable
    configuration than none)."""
    try:
        data = json.loads(path.read_text())
        return Split(int(data.get("canaryWeight", 0)), int(data.get("stableYield", 0)))
    except FileNotFoundError:
        return Split()
    except (OSError, ValueError, TypeError, AttributeError) as e:
        log.error("the rollout split cannot be read", extra={"path": str(path), "error": repr(e)})
        return Split()


class CallFilter:
    """The worker's answer to LiveKit's call requests (``rtc_session(on_request=...)``)."""

    def __init__(
        self,
        config_hash: str,
        canary: bool,
        path: Path = SPLIT_PATH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config_hash = config_hash
        self.canary = canary
        self.path = path
        self._clock = clock

    @classmethod
    def from_env(cls, config_hash: str) -> CallFilter:
        return cls(config_hash, os.environ.get(contract.ROLLOUT_TRACK_ENV) == "canary")

    async def on_request(self, req: JobRequest) -> None:
        room = req.room.name
        # The participant says which configuration serves: callers' apps, tests, logs.
        attributes = {contract.CONFIG_HASH_ATTRIBUTE: self.config_hash}
        split = read_split(self.path)
        if split.takes(room, self.canary):
            await req.accept(attributes=attributes)
            return
        waited = self._waited(req)
        if split.overflows(room, self.canary, waited):
            log.info(
                "call of the canary's share taken: it waited for the canary's workers",
                extra={"room": room, "waited_seconds": round(waited, 1)},
            )
            await req.accept(attributes=attributes | {contract.OVERFLOW_ATTRIBUTE: "true"})
            return
        # Not terminate: LiveKit then offers the call to another worker (the other pool).
        log.info("call left to the other pool", extra={"room": room, "canary": self.canary})
        await req.reject(terminate=False)

    def _waited(self, req: JobRequest) -> float:
        """Seconds since the call's room was made (LiveKit's clock; 0 when it gives none)."""
        created_ms = req.room.creation_time_ms or req.room.creation_time * 1000
        return max(self._clock() - created_ms / 1000, 0.0) if created_ms else 0.0
