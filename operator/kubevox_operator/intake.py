"""Intake from the watches: each event updates the cache and queues the keys of the objects
whose reconcile it concerns (the object itself, its owner, the agents using a KnowledgeBase)."""

from __future__ import annotations

import logging
from typing import Any, get_args

from kubevox_api import contract

from .builders.agent import OptionalKind
from .cache import Cache
from .kube import KINDS
from .names import Claims, agent_claim
from .store import Store
from .workqueue import WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")
COALESCE_SECONDS = 0.5
"""A child's status change (a rollout progressing) re-reconciles its owner this much later, so
that a burst of them becomes one status write."""
OPTIONAL_CRDS: dict[str, OptionalKind] = {KINDS[k].crd: k for k in get_args(OptionalKind)}
"""CRDs that may be absent and come or go at run time, by name: children of their kinds are
built only while the CRD is served."""


def serves(crd: Obj | None, version: str) -> bool:
    """Whether a CustomResourceDefinition is Established, serves ``version`` and is not being
    deleted (its objects are going, and new ones are refused)."""
    if not crd or (crd.get("metadata") or {}).get("deletionTimestamp"):
        return False
    established = any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions", []) or []
    )
    return established and any(
        v.get("name") == version and v.get("served")
        for v in (crd.get("spec") or {}).get("versions", []) or []
    )


def status_only(old: Obj | None, new: Obj) -> bool:
    """Whether a child changed only where its controller reports (same generation, labels and
    annotations): nothing the operator set can differ, only its owner's status may."""
    if old is None:
        return False
    o, n = old.get("metadata", {}), new.get("metadata", {})
    return (
        "generation" in n
        and o.get("generation") == n.get("generation")
        and (o.get("labels") or {}) == (n.get("labels") or {})
        and (o.get("annotations") or {}) == (n.get("annotations") or {})
    )


def agents_using(cache: Cache, ns: str, kb: str) -> list[str]:
    """Names of the VoiceAgents in ``ns`` whose spec.knowledgeBases names ``kb``."""
    return [
        va["metadata"]["name"]
        for va in cache.items(contract.VOICE_AGENT_KIND, ns)
        if any(r.get("name") == kb for r in va.get("spec", {}).get("knowledgeBases", []) or [])
    ]


class Intake:
    def __init__(self, cache: Cache, store: Store, queue: WorkQueue, claims: Claims) -> None:
        self.cache = cache
        self.store = store
        self.queue = queue
        self.claims = claims

    def observe(self, kind: str, event_type: str | None, obj: Obj) -> None:
        meta = obj.get("metadata", {})
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = (kind, ns, name)
        old = self.cache.get(kind, ns, name)
        if event_type == "DELETED":
            self.store.forget(key)
        elif event_type is not None and self.store.echo(key, meta.get("resourceVersion")):
            return  # the watch echoing the operator's own write: the reconcile that made it saw it
        else:
            self.store.observed(key, obj)
        if kind == contract.VOICE_AGENT_KIND:
            claim = None if event_type == "DELETED" else agent_claim(obj)
            for other in self.claims.update(key, claim):
                self.queue.add((contract.VOICE_AGENT_KIND, other[1], other[2]))
        if kind == contract.VOICE_AGENT_TEST_KIND:
            # A suite is its agent's business (before and after an agentRef change).
            refs = {(o.get("spec") or {}).get("agentRef") for o in (old or {}, obj)}
            for agent in sorted(r for r in refs if r):
                self.queue.add((contract.VOICE_AGENT_KIND, ns, agent))
            return
        if kind in (contract.VOICE_AGENT_KIND, contract.KNOWLEDGE_BASE_KIND):
            st = obj.get("status") or {}
            # A spec nobody has reconciled yet goes first: someone is waiting for it.
            urgent = event_type != "DELETED" and st.get("observedGeneration") != meta.get(
                "generation"
            )
            self.queue.add(key, urgent=urgent)
            if kind == contract.KNOWLEDGE_BASE_KIND:
                self.wake_agents(ns, name)
            return
        labels = meta.get("labels") or {}
        owners = [
            (owner, ns, labels[label])
            for owner, label in (
                (contract.VOICE_AGENT_KIND, contract.LABEL_VOICE_AGENT),
                (contract.VOICE_AGENT_KIND, contract.LABEL_AGENT_TEST),  # its test pods
                (contract.KNOWLEDGE_BASE_KIND, contract.LABEL_KNOWLEDGE_BASE),
            )
            if label in labels
        ]
        for owner in owners:
            if event_type != "DELETED" and (kind == "Pod" or status_only(old, obj)):
                self.queue.add_after(owner, COALESCE_SECONDS)  # only the owner's status moves
            else:
                self.queue.add(owner)  # drift: repair now

    def wake_agents(self, ns: str, kb: str) -> None:
        """Queues the agents using KnowledgeBase ``ns``/``kb``."""
        for va in agents_using(self.cache, ns, kb):
            self.queue.add((contract.VOICE_AGENT_KIND, ns, va))

    def observe_crd(
        self, event_type: str | None, crd: Obj, served: frozenset[OptionalKind]
    ) -> frozenset[OptionalKind] | None:
        """One of OPTIONAL_CRDS appeared or went away: agents gain or lose children of its kind
        (a ServiceMonitor; a ScaledObject, or AutoscalerUnavailable, for autoscaler keda).
        Returns the kinds served now, None when that did not change."""
        kind = OPTIONAL_CRDS.get((crd.get("metadata") or {}).get("name", ""))
        if kind is None:
            return None
        present = event_type != "DELETED" and serves(crd, KINDS[kind].version)
        if present == (kind in served):
            return None
        served = served | {kind} if present else served - {kind}
        log.info("%s CRD %s", kind, "present" if present else "gone")
        if not present:  # they went with their CRD, and their watch stops without events
            for obj in list(self.cache.items(kind)):
                meta = obj["metadata"]
                self.store.forget((kind, meta["namespace"], meta["name"]))
        for va in self.cache.items(contract.VOICE_AGENT_KIND):
            self.queue.add(
                (contract.VOICE_AGENT_KIND, va["metadata"]["namespace"], va["metadata"]["name"])
            )
        return served
