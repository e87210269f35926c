"""The I/O of a VoiceAgent's canary rollout: what the cluster and Prometheus show goes into
rollout.next_rollout, whose decision becomes the objects the reconciler applies and removes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubevox_api import VoiceAgent, contract

from .builders.canary import (
    canary_children,
    canary_keys,
    canary_name,
    canary_replicas,
    split_config_map,
    stable_pool_keys,
)
from .builders.common import child_name
from .canary_metrics import CanaryMetrics
from .events import Events
from .kube import ApiError
from .rollout import PASS, RolloutObservation, judged_window, next_rollout
from .status import Problem
from .store import Store

Obj = dict[str, Any]


@dataclass
class RolloutPlan:
    objects: list[Obj]
    """The children to apply (the stable pool's left out while it keeps its configuration)."""
    egress: list[Obj]
    """The egress policies to apply, likewise."""
    status: Obj | None
    """status.rollout."""
    again: float | None = None
    problem: Problem | None = None
    """Why the spec's configuration does not serve (an aborted canary)."""
    remove: list[tuple[str, str]] = field(default_factory=list)
    """Children to delete if the agent owns them."""


def template_hash(deployment: Obj | None) -> str | None:
    if deployment is None:
        return None
    meta = deployment["spec"]["template"].get("metadata") or {}
    return (meta.get("annotations") or {}).get(contract.CONFIG_HASH_ANNOTATION)


def serves(deployment: Obj | None, digest: str, *, every_pod: bool) -> bool:
    """Whether ``deployment`` runs configuration ``digest``: on at least one available pod, or
    (``every_pod``) on all of them with no older pod left."""
    if deployment is None or template_hash(deployment) != digest:
        return False
    st = deployment.get("status") or {}
    if st.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return False
    updated: int = st.get("updatedReplicas", 0)
    available: int = st.get("availableReplicas", 0)
    if not every_pod:
        return updated >= 1 and available >= 1
    wanted: int = deployment["spec"].get("replicas", 1)
    return updated == st.get("replicas", 0) >= wanted and available >= wanted


def follows_split(deployment: Obj | None) -> bool:
    pod = (deployment or {}).get("spec", {}).get("template", {}).get("spec", {})
    return any(v.get("name") == "rollout" for v in pod.get("volumes") or [])


class AgentRollouts:
    def __init__(
        self,
        store: Store,
        events: Events,
        metrics: CanaryMetrics,
        settle_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.events = events
        self.metrics = metrics
        self.settle_seconds = settle_seconds
        self.clock = clock

    async def plan(
        self,
        agent: VoiceAgent,
        body: Obj,
        children: list[Obj],
        egress: list[Obj],
        digest: str,
        tested: bool,
    ) -> RolloutPlan:
        """``tested``: a VoiceAgentTest names the agent (its result gates the canary)."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        prev_status: Obj = body.get("status") or {}
        prev: Obj | None = prev_status.get("rollout")
        stable = self.store.cache.get("Deployment", ns, child_name(name))
        canary_dep = self.store.cache.get("Deployment", ns, canary_name(agent))
        in_flight = (prev or {}).get("phase") in ("Progressing", "Promoting", "Aborting", "Aborted")
        tests = prev_status.get("tests") or {}
        now = self.clock()
        verdict = PASS
        window = judged_window(prev, digest, now)
        analysis = agent.spec.rollout.canary
        if window is not None and analysis is not None:
            verdict = await self.metrics.verdict(analysis.analysis, ns, name, digest, window)
        stable_hash = str(prev["stableHash"]) if prev and in_flight else template_hash(stable)
        decision = next_rollout(
            RolloutObservation(
                spec=agent.spec.rollout,
                previous=prev,
                stable_hash=stable_hash,
                new_hash=digest,
                now=now,
                settle_seconds=self.settle_seconds,
                stable_follows_split=follows_split(stable),
                canary_available=serves(canary_dep, digest, every_pod=False),
                stable_rolled=serves(stable, digest, every_pod=True),
                tests=(tests.get("phase") if tests.get("configHash") == digest else "Running")
                if tested
                else None,
                verdict=verdict,
            )
        )
        if decision.event is not None:
            self.events.event(body, *decision.event)
        kept = stable_pool_keys(agent) if decision.keep_stable else set()
        objects = [o for o in children if (o["kind"], o["metadata"]["name"]) not in kept]
        policies = [o for o in egress if (o["kind"], o["metadata"]["name"]) not in kept]
        remove: list[tuple[str, str]] = []
        if decision.canary:
            replicas = canary_replicas((stable or {}).get("spec", {}).get("replicas") or 1,
                                       decision.split[0])  # fmt: skip
            objects += canary_children(agent, children + egress, replicas)
        else:
            remove += canary_keys(agent)
        if agent.spec.rollout.strategy == "Canary":
            # (Left as it is once the strategy is Rolling: no pod mounts it any more.)
            objects.append(split_config_map(agent, body, decision.split, digest))
        st = decision.status or {}
        problem = None
        if st.get("phase") in ("Aborting", "Aborted"):
            problem = Problem(
                "CanaryAborted",
                f"configuration {st.get('canaryHash')} was rolled back: {st.get('message', '')};"
                f" configuration {st.get('stableHash')} serves until the spec changes",
            )
        return RolloutPlan(objects, policies, decision.status, decision.again, problem, remove)

    async def remove(
        self, body: Obj, keys: list[tuple[str, str]], why: str
    ) -> tuple[bool, list[Problem]]:
        """Deletes what the agent owns of ``keys``: whether any went, and what could not (the
        status says so; the rest of the reconcile goes on)."""
        meta = body["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        wrote, problems = False, []
        for kind, name in keys:
            try:
                wrote |= await self.store.delete_owned_named(kind, ns, name, uid, why)
            except ApiError as e:
                problems.append(
                    Problem("ChildNotRemoved", f"{kind} {name} cannot be deleted: {e.message}")
                )
        return wrote, problems
