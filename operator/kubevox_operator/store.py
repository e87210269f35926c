"""The write side of the reconcilers: children applied unless the live object already carries
them, status written when it changed, and the operator's own writes remembered so that their
watch echoes are skipped (the cache, cache.py, is the read side)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kubevox_api import contract
from kubevox_api.runtime_config import stable_hash

from .cache import Cache
from .diff import contains
from .kube import ApiError, Kube
from .status import Problem

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]  # (kind, namespace, name)
log = logging.getLogger("kubevox.controller")
LISTED_KINDS = frozenset(
    (
        contract.VOICE_AGENT_KIND,
        contract.KNOWLEDGE_BASE_KIND,
        contract.VOICE_AGENT_TEST_KIND,
        "ConfigMap",
        "ServiceAccount",
        "Service",
        "RoleBinding",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "CronJob",
        "Ingress",
        "Pod",
    )
)
"""Watched kinds whose initial listing completes before any reconcile (kopf's index barrier):
once synced, a cache miss means the object does not exist, with no GET to make sure."""


def merge_patch(current: Obj, wanted: Obj) -> Obj:
    """``wanted`` as a JSON merge patch (RFC 7386) over ``current``: a key ``wanted`` no longer
    has is null, in nested objects too (else the API server keeps it: a finished rollout still
    naming its canary)."""
    patch: Obj = {}
    for k, v in wanted.items():
        old = current.get(k)
        patch[k] = merge_patch(old, v) if isinstance(v, dict) and isinstance(old, dict) else v
    for k in current:
        if k not in wanted:
            patch[k] = None
    return patch


class ChildProblem(Exception):
    """A child the operator may not or cannot write: reported in its owner's status."""

    expected = True

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def owned_by(obj: Obj, uid: str | None) -> bool:
    """Whether ``obj`` carries an owner reference to the object with ``uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(r.get("uid") == uid for r in refs)


def child_owner_uid(obj: Obj) -> str | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return refs[0].get("uid") if refs else None


class Store:
    """Writes through the Kubernetes API (``kube``, set once connected), keeping ``cache`` as
    the writes left the objects. ``on_status(kind, namespace, name)`` is told of each status
    write (its watch echo is skipped, and others may be waiting for it)."""

    def __init__(
        self,
        cache: Cache,
        resync_seconds: float,
        on_status: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.cache = cache
        self.kube: Kube | None = None
        self.resync_seconds = resync_seconds
        self.on_status = on_status
        self._applied: dict[ObjKey, tuple[str, str]] = {}
        # resourceVersion of the operator's own last write per object: its watch echo is skipped.
        self._wrote: dict[ObjKey, str] = {}
        self._fresh: dict[ObjKey, float] = {}  # when a CRD kind's object was last read (monotonic)

    @property
    def api(self) -> Kube:
        assert self.kube is not None
        return self.kube

    # --- what the watches report ----------------------------------------------------------------

    def echo(self, key: ObjKey, resource_version: str | None) -> bool:
        """Whether a watch event is the echo of the operator's own last write to ``key`` (then
        it is consumed: the reconcile that made the write saw it)."""
        if self._wrote.get(key) != resource_version:
            return False
        del self._wrote[key]
        return True

    def observed(self, key: ObjKey, obj: Obj) -> None:
        """A watch event's object, into the cache."""
        self.cache.put(key[0], obj)
        if key[0] not in LISTED_KINDS:
            self._fresh[key] = time.monotonic()

    def forget(self, key: ObjKey) -> None:
        """An object gone from the cluster: nothing about it is kept."""
        self.cache.delete(*key)
        self._applied.pop(key, None)
        self._wrote.pop(key, None)
        self._fresh.pop(key, None)

    def remember(self, kind: str, result: Obj) -> None:
        """The object as the operator's own write left it (its watch echo is then skipped)."""
        meta = result["metadata"]
        self.cache.put(kind, result)
        self._wrote[(kind, meta["namespace"], meta["name"])] = meta.get("resourceVersion", "")

    # --- writes ---------------------------------------------------------------------------------

    async def ensure(self, obj: Obj) -> bool:
        """Apply ``obj`` unless the live object already carries it. True when it wrote."""
        kind, meta = obj["kind"], obj["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        live = self.cache.get(*key)
        now = time.monotonic()
        if kind not in LISTED_KINDS and (
            live is None or now - self._fresh.get(key, 0.0) > self.resync_seconds
        ):
            # A CRD's kind: its watch starts when the CRD appears and may lag or stall (seen: a
            # 429 "storage is (re)initializing" on its first list), so a miss is looked up and
            # a cached copy is trusted for one resync period at most.
            live = await self.api.get(*key)
            self._fresh[key] = now
            if live is None:
                self.cache.delete(*key)
            else:
                self.cache.put(kind, live)
        if live is None and kind in LISTED_KINDS:
            # The watches see only objects with the operator's label: a namesake without it is
            # invisible to the cache, and a forced apply would take it over.
            live = await self.api.get(*key)
        owner_uid = child_owner_uid(obj)
        if live is not None and not owned_by(live, owner_uid):
            raise ChildProblem(
                Problem(
                    "ChildConflict",
                    f"{kind} {key[1]}/{key[2]} exists and is not this object's (no owner "
                    "reference to it): left untouched; delete or rename it",
                )
            )
        if live is not None and contains(live, obj):
            return False
        digest = stable_hash(obj)
        if live is not None and self._applied.get(key) == (
            digest,
            live["metadata"].get("resourceVersion"),
        ):
            return False  # our own last apply, which the server normalised differently
        try:
            result = await self.api.apply(obj)
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            log.warning("%s %s/%s rejected: %s", kind, key[1], key[2], exc.message)
            raise ChildProblem(
                Problem("ChildRejected", f"{kind} {key[1]}/{key[2]}: {exc.message}")
            ) from None
        self.remember(kind, result)
        if kind not in LISTED_KINDS:
            self._fresh[key] = now
        self._applied[key] = (digest, result["metadata"].get("resourceVersion", ""))
        log.info("applied %s %s/%s", kind, key[1], key[2])
        return True

    async def delete_owned(
        self, kind: str, live: Obj | None, owner_uid: str | None, why: str
    ) -> bool:
        """Deletes ``live`` (a child the spec no longer wants) if ``owner_uid`` owns it; the
        delete names its uid, so a namesake made since is left alone. True when it deleted."""
        if live is None or not owned_by(live, owner_uid):
            return False
        meta = live["metadata"]
        ns, name = meta["namespace"], meta["name"]
        await self.api.delete(kind, ns, name, uid=meta.get("uid"))
        self.forget((kind, ns, name))
        log.info("deleted %s %s/%s: %s", kind, ns, name, why)
        return True

    async def delete_owned_named(
        self, kind: str, namespace: str, name: str, owner_uid: str | None, why: str
    ) -> bool:
        """:meth:`delete_owned` by name: the watched kinds are found in the cache, the others
        looked up."""
        if kind in LISTED_KINDS:
            live = self.cache.get(kind, namespace, name)
        else:
            live = await self.api.get(kind, namespace, name)
        return await self.delete_owned(kind, live, owner_uid, why)

    async def ensure_all(self, objects: list[Obj]) -> tuple[bool, list[Problem]]:
        """Applies independent children concurrently: whether any was written, and the
        problems of those refused (the others are still applied)."""
        results = await asyncio.gather(*(self.ensure(o) for o in objects), return_exceptions=True)
        problems = [r.problem for r in results if isinstance(r, ChildProblem)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, ChildProblem):
                raise r
        return any(r is True for r in results), problems

    async def write_status(self, kind: str, body: Obj, status: Obj) -> bool:
        current = body.get("status") or {}
        wanted = {k: v for k, v in status.items() if v is not None}
        if current == wanted:
            return False
        patch = merge_patch(current, wanted)
        meta = body["metadata"]
        result = await self.api.patch_status(kind, meta["namespace"], meta["name"], patch)
        self.remember(kind, result)
        if self.on_status is not None:
            self.on_status(kind, meta["namespace"], meta["name"])
        return True
