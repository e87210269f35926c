"""The Controller wires the parts of the operator together: the cache (read side), the store
(write side, store.py), the intake from the watches (intake.py), the work queue, one reconciler
per kind (reconcile_voiceagent.py with reconcile_sip.py, reconcile_knowledgebase.py), Secrets
(secret_reader.py), Events (events.py) and the waiting-call poll (waiting_poll.py). It runs
the periodic resync and dispatches queued keys to the reconcilers, with their metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from kubevox_api import contract

from .agent_test_runs import AgentTests
from .cache import Cache
from .canary_metrics import CanaryMetrics
from .events import Events
from .intake import OPTIONAL_CRDS, Intake
from .kube import KINDS, Kube
from .metrics import RECONCILE_SECONDS, RECONCILES
from .names import Claims
from .optional_watch import OptionalWatches
from .peering import PeeringGate
from .reconcile_knowledgebase import KnowledgeBaseReconciler
from .reconcile_rollout import AgentRollouts
from .reconcile_sip import AgentSIP
from .reconcile_voiceagent import VoiceAgentReconciler
from .secret_reader import Secrets
from .settings import Settings
from .store import Store
from .waiting_poll import WaitingPoll
from .workqueue import Key, WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")


class Controller:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.defaults = settings.defaults
        """The children's settings; ``served`` follows the optional CRDs at run time."""
        self.cache = Cache()
        self.queue = WorkQueue(
            self._dispatch, workers=settings.workers, retry_max=settings.retry_max_seconds
        )
        self.connected = asyncio.Event()
        self.gate: PeeringGate | None = None
        """With kopf peering: whether this replica may act (peering.py); None: standalone."""
        self._standalone = asyncio.Event()
        self._standalone.set()
        self.synced = asyncio.Event()
        """kopf has listed every kind in LISTED_KINDS into the cache (set by the first event)."""
        self.store = Store(self.cache, settings.resync_seconds, self._status_written)
        self.secrets = Secrets(self.store)
        self.events = Events(self.store)
        self.claims = Claims()  # LiveKit agent names, to report two agents sharing one
        self.intake = Intake(self.cache, self.store, self.queue, self.claims)
        # Not kopf's watches: see optional_watch.py.
        self.optional = OptionalWatches(
            lambda: self.kube, self.intake.observe, self.synced, settings.namespaces
        )
        self.sip = AgentSIP(
            self.store,
            self.secrets,
            self.events,
            self.queue,
            settings.livekit_allowed,
            settings.sip_cleanup_timeout_seconds,
        )
        self.waiting = WaitingPoll(
            self.cache,
            self.sip.livekit_credentials,
            lambda key: self.queue.add((contract.VOICE_AGENT_KIND, *key)),
            contract.LABEL_VOICE_AGENT,
            settings.waiting_poll_seconds,
            settings.livekit_allowed,
            acting=lambda: self.acting.is_set(),
        )
        self.agents = VoiceAgentReconciler(
            self.store,
            self.secrets,
            self.events,
            self.queue,
            self.sip,
            AgentTests(self.store, self.events),
            AgentRollouts(
                self.store,
                self.events,
                CanaryMetrics(settings.defaults.prometheus_url),
                settings.rollout_settle_seconds,
            ),
            self.claims,
            lambda: self.defaults,
            lambda ns, name: self.waiting.counts.get((ns, name)),
            agent_policy=settings.agent_policy,
            egress=settings.egress,
            sip_poll_seconds=settings.sip_poll_seconds,
        )
        self.knowledge = KnowledgeBaseReconciler(
            self.store,
            self.secrets,
            self.events,
            self.queue,
            lambda: self.defaults,
            egress=settings.egress,
        )
        self._looked: dict[Key, float] = {}  # when each key was last reconciled (monotonic)
        self._resync_task: asyncio.Task[None] | None = None
        self._waiting_task: asyncio.Task[None] | None = None
        self._gate_task: asyncio.Task[None] | None = None

    @property
    def kube(self) -> Kube | None:
        """The API client, once connected (the store writes through it)."""
        return self.store.kube

    @kube.setter
    def kube(self, kube: Kube | None) -> None:
        self.store.kube = kube

    @property
    def acting(self) -> asyncio.Event:
        """Set while this replica may reconcile: always when standalone, else while kopf
        peering does not pause it."""
        return self.gate.active if self.gate else self._standalone

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.queue.start()
        self._resync_task = asyncio.create_task(self._resync())
        self._waiting_task = asyncio.create_task(self._after_sync(self.waiting.run))
        if self.gate:
            self._gate_task = asyncio.create_task(self.gate.run())

    async def stop(self) -> None:
        for task in (self._resync_task, self._waiting_task, self._gate_task):
            if task:
                task.cancel()
        await self.optional.stop()
        await self.queue.stop()
        await self.events.drain()  # Events still being posted: a courtesy, given a moment
        if self.kube:
            await self.kube.close()

    async def connect(self, kube: Kube) -> None:
        self.kube = kube
        served = frozenset(
            [
                k
                for k in OPTIONAL_CRDS.values()
                if await kube.has_api(KINDS[k].api_version, KINDS[k].plural)
            ]
        )
        self.defaults = replace(self.defaults, served=served)
        for kind in OPTIONAL_CRDS.values():
            log.info("connected; %s CRD %s", kind, "present" if kind in served else "absent")
        self.optional.follow(served)
        self.connected.set()

    async def _after_sync(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await self.connected.wait()
        await self.synced.wait()
        await loop()

    async def _resync(self) -> None:
        """Level-based safety net: look at everything now and then (unwatched Secrets and
        source ConfigMaps are noticed here); an idle resync writes nothing."""
        while True:
            period = self.settings.resync_seconds
            await asyncio.sleep(period)
            recent = time.monotonic() - period / 2
            for kind in (contract.KNOWLEDGE_BASE_KIND, contract.VOICE_AGENT_KIND):
                for obj in self.cache.items(kind):
                    key = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
                    # One just reconciled (an event) needs no safety-net look yet.
                    if self._looked.get(key, 0.0) < recent:
                        self.queue.add(key)

    # --- intake from the watches ----------------------------------------------------------------

    def observe(self, kind: str, event_type: str | None, obj: Obj) -> None:
        self.synced.set()  # kopf calls handlers only once every indexed kind is listed
        self.intake.observe(kind, event_type, obj)

    def observe_crd(self, event_type: str | None, crd: Obj) -> None:
        served = self.intake.observe_crd(event_type, crd, self.defaults.served)
        if served is not None:
            self.defaults = replace(self.defaults, served=served)
            self.optional.follow(served)

    def _status_written(self, kind: str, ns: str, name: str) -> None:
        if kind == contract.KNOWLEDGE_BASE_KIND:
            # Its watch echo is skipped, yet its agents may be waiting for exactly this status
            # (Ready after its Job): they look again now.
            self.intake.wake_agents(ns, name)

    # --- writes (the store's) -------------------------------------------------------------------

    async def write_status(self, kind: str, body: Obj, status: Obj) -> bool:
        return await self.store.write_status(kind, body, status)

    def _remember(self, kind: str, result: Obj) -> None:
        self.store.remember(kind, result)

    # --- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, key: Key) -> float | None:
        await self.connected.wait()
        await self.synced.wait()
        await self.acting.wait()  # a paused replica's cache no longer follows the cluster
        kind = key[0]
        started = time.perf_counter()
        outcome = "error"
        self._looked[key] = time.monotonic()
        try:
            if kind == contract.VOICE_AGENT_KIND:
                again, outcome = await self.agents.reconcile(key)
            else:
                again, outcome = await self.knowledge.reconcile(key)
            return again
        finally:
            if outcome == "deleted":
                self._looked.pop(key, None)
            RECONCILES.labels(kind=kind, outcome=outcome).inc()
            RECONCILE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
