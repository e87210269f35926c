"""Whether this replica is the one kopf peering lets act.

Replicas of the operator share a kopf peering object (``--peering``): each writes its priority
there, and kopf pauses a replica that sees a live peer of higher priority (or of the same
priority: both pause, as kopf does). But kopf pauses only its own watches. The work queue, the
resync, the waiting-call poll and the optional watches are the operator's own: in a paused replica
they would go on reconciling from a cache that no longer changes, and write back an old spec over
the active replica's work (an operator rollout, whose new pod outranks the old one, is enough).

``PeeringGate`` reads the same peering object(s), applies kopf's rule with this replica's own
identity and priority (passed to kopf, so both judge the same entry) and holds ``active`` set
only while no peer outranks it. kopf pauses on its watch event, the gate on its next read
(``period``): for that moment both may act, as before kopf paused at all.
"""

from __future__ import annotations

import asyncio
import datetime
import fnmatch
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import aiohttp

from .kube import ApiError, Kube

log = logging.getLogger("kubevox.peering")

GROUP_VERSION = "kopf.dev/v1"
PERIOD_SECONDS = 2.0
"""How often the peering object is read."""


def outranking_peers(
    status: Mapping[str, Any], identity: str, priority: int, now: datetime.datetime
) -> list[str]:
    """The live peers in a peering object's ``status`` that make kopf pause this replica: a
    priority above ``priority``, or equal to it. A peer is dead once ``lastseen`` plus
    ``lifetime`` seconds has passed (kopf's keep-alive renews it; a peer that stopped
    gracefully removed its entry)."""
    found = []
    for peer, info in status.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        try:
            lastseen = datetime.datetime.fromisoformat(str(info["lastseen"]))
            lifetime = datetime.timedelta(seconds=int(info.get("lifetime", 60)))
            peer_priority = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue  # not an entry kopf wrote: kopf ignores it too
        if lastseen.tzinfo is None:
            lastseen = lastseen.replace(tzinfo=datetime.UTC)
        if lastseen + lifetime > now and peer_priority >= priority:
            found.append(peer)
    return sorted(found)


def peering_paths(name: str, namespaces: Collection[str]) -> list[tuple[str, str | None]]:
    """Where kopf keeps the peering objects: the ClusterKopfPeering ``name`` when the operator
    watches every namespace, else the KopfPeering ``name`` in each watched namespace. A glob
    lists them across the cluster (path, glob to filter namespaces by)."""
    if not namespaces:
        return [(f"/apis/{GROUP_VERSION}/clusterkopfpeerings/{name}", None)]
    paths: list[tuple[str, str | None]] = []
    for ns in namespaces:
        if set(ns) & set("*?["):
            selector = f"metadata.name={name}"
            paths.append((f"/apis/{GROUP_VERSION}/kopfpeerings?fieldSelector={selector}", ns))
        else:
            paths.append((f"/apis/{GROUP_VERSION}/namespaces/{ns}/kopfpeerings/{name}", None))
    return paths


class PeeringGate:
    def __init__(
        self,
        kube: Callable[[], Kube | None],
        identity: str,
        priority: int,
        name: str,
        namespaces: Collection[str] = (),
        period: float = PERIOD_SECONDS,
    ) -> None:
        self._kube = kube
        self.identity = identity
        self.priority = priority
        self._paths = peering_paths(name, namespaces)
        self.period = period
        self.active = asyncio.Event()
        """Set while no live peer outranks this replica (clear until the first read)."""
        self._failing = False

    async def run(self) -> None:
        while True:
            kube = self._kube()
            if kube is not None:
                try:
                    self._judge(await self._statuses(kube))
                except (ApiError, OSError, TimeoutError, aiohttp.ClientError) as exc:
                    # Unknown: keep the last judgement (kopf, reading the same object, would
                    # not have changed its mind either).
                    if not self._failing:
                        log.warning("cannot read the kopf peering object: %s", exc)
                        self._failing = True
            await asyncio.sleep(self.period)

    async def _statuses(self, kube: Kube) -> list[Mapping[str, Any]]:
        statuses: list[Mapping[str, Any]] = []
        for path, pattern in self._paths:
            try:
                obj = await kube.request("GET", path)
            except ApiError as exc:
                if exc.status == 404:  # no peering object: no peer to give way to
                    continue
                raise
            items = obj.get("items") if pattern is not None else [obj]
            for item in items or []:
                ns = (item.get("metadata") or {}).get("namespace", "")
                if pattern is None or fnmatch.fnmatchcase(ns, pattern):
                    statuses.append(item.get("status") or {})
        self._failing = False
        return statuses

    def _judge(self, statuses: list[Mapping[str, Any]]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ahead = sorted(
            {p for s in statuses for p in outranking_peers(s, self.identity, self.priority, now)}
        )
        if ahead and self.active.is_set():
            log.info("pausing: another replica acts (kopf peering: %s)", ", ".join(ahead))
            self.active.clear()
        elif not ahead and not self.active.is_set():
            log.info("acting: no replica of higher priority is alive (kopf peering)")
            self.active.set()
