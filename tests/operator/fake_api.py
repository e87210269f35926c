"""An in-memory stand-in for the Kubernetes API the reconcilers write through (kube.Kube), and
the reconcilers wired to it: unit tests of a whole reconcile with no cluster.

It keeps objects by (kind, namespace, name), gives each write a new resourceVersion, and
records every write in ``writes`` (verb, kind, name) so that a test can say what a reconcile
wrote, and that a second one wrote nothing. Server-side apply is modelled as "the applied
fields replace the live ones" (status kept), which is what these tests need of it."""

from __future__ import annotations

import base64
import copy
import itertools
from dataclasses import dataclass
from typing import Any, cast

from kubevox_operator.agent_test_runs import AgentTests
from kubevox_operator.builders import OperatorDefaults
from kubevox_operator.builders.network import EgressSettings
from kubevox_operator.cache import Cache
from kubevox_operator.canary_metrics import CanaryMetrics
from kubevox_operator.events import Events
from kubevox_operator.kube import ApiError, Kube
from kubevox_operator.names import Claims
from kubevox_operator.policy import AgentPolicy
from kubevox_operator.reconcile_knowledgebase import KnowledgeBaseReconciler
from kubevox_operator.reconcile_rollout import AgentRollouts
from kubevox_operator.reconcile_sip import AgentSIP
from kubevox_operator.reconcile_voiceagent import VoiceAgentReconciler
from kubevox_operator.secret_reader import Secrets
from kubevox_operator.store import Store
from kubevox_operator.workqueue import Key, WorkQueue

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]


def merged(target: Obj, patch: Obj) -> Obj:
    """RFC 7386, as the API server applies a merge patch: null removes, objects merge."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        else:
            out[k] = v
    return out


class FakeKube:
    """The calls of kube.Kube the reconcilers make, against a dict."""

    def __init__(self) -> None:
        self.objects: dict[ObjKey, Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.events: list[Obj] = []
        self.reject: dict[str, str] = {}
        """kind → message: applies of that kind fail with a 422 (admission said no)."""
        self.forbid_delete: set[str] = set()
        """Kinds the operator's role may not delete (403)."""
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)

    def seed(self, obj: Obj) -> Obj:
        """An object as if someone else created it (a Secret's stringData becomes data)."""
        obj = copy.deepcopy(obj)
        if obj["kind"] == "Secret" and "stringData" in obj:
            data = {k: base64.b64encode(v.encode()).decode() for k, v in obj["stringData"].items()}
            obj["data"] = {**obj.get("data", {}), **data}
            del obj["stringData"]
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._rv))
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def live(self, kind: str, ns: str, name: str) -> Obj | None:
        obj = self.objects.get((kind, ns, name))
        return copy.deepcopy(obj) if obj is not None else None

    def written(self, verb: str | None = None) -> list[tuple[str, str, str]]:
        return [w for w in self.writes if verb is None or w[0] == verb]

    # --- kube.Kube ------------------------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.live(kind, namespace, name)

    async def apply(self, obj: Obj) -> Obj:
        kind, meta = obj["kind"], obj["metadata"]
        if kind in self.reject:
            raise ApiError(422, self.reject[kind])
        key = (kind, meta["namespace"], meta["name"])
        old = self.objects.get(key)
        new = copy.deepcopy(obj)
        if old is not None:
            new["metadata"] = {**old["metadata"], **new["metadata"]}
            if "status" in old:
                new["status"] = old["status"]
            if old.get("spec") != new.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        else:
            new["metadata"]["uid"] = f"uid-{next(self._uid)}"
            new["metadata"]["generation"] = 1
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[key] = new
        self.writes.append(("apply", kind, meta["name"]))
        return copy.deepcopy(new)

    async def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> Obj:
        obj = self.objects[(kind, namespace, name)]
        obj["status"] = merged(obj.get("status", {}), status)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.writes.append(("patch-status", kind, name))
        return copy.deepcopy(obj)

    async def json_patch(self, kind: str, namespace: str, name: str, ops: list[Obj]) -> Obj:
        """The ops the SIP finalizer uses: test, add and remove under /metadata."""
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            raise ApiError(404, "not found")
        meta = obj["metadata"]
        for op in ops:
            field, _, index = op["path"].removeprefix("/metadata/").partition("/")
            if op["op"] == "test":
                value = meta.get(field) if not index else meta[field][int(index)]
                if value != op["value"]:
                    raise ApiError(422, f"test of {op['path']} failed")
            elif op["op"] == "add":
                if index == "-":
                    meta[field].append(op["value"])
                else:
                    meta[field] = op["value"]
            elif op["op"] == "remove":
                del meta[field][int(index)]
        meta["resourceVersion"] = str(next(self._rv))
        self.writes.append(("patch", kind, name))
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[(kind, namespace, name)]  # the last finalizer gone: deleted
        return copy.deepcopy(obj)

    async def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        obj = self.objects.get((kind, namespace, name))
        if obj is None or (uid is not None and obj["metadata"].get("uid") != uid):
            return
        if kind in self.forbid_delete:
            raise ApiError(403, f"{kind.lower()}s {name!r} is forbidden: cannot delete")
        del self.objects[(kind, namespace, name)]
        self.writes.append(("delete", kind, name))

    async def create_event(self, event: Obj) -> None:
        self.events.append(event)


async def no_reconcile(key: Key) -> None:
    raise AssertionError("the queue is never started in these tests")


@dataclass
class Harness:
    """The reconcilers as the Controller wires them, over a FakeKube and a Cache."""

    api: FakeKube
    cache: Cache
    store: Store
    queue: WorkQueue
    events: Events
    agents: VoiceAgentReconciler
    knowledge: KnowledgeBaseReconciler
    waiting: dict[tuple[str, str], int]

    def watch(self, kind: str, ns: str, name: str) -> Obj:
        """The object as the watch would deliver it now, into the cache."""
        obj = self.api.live(kind, ns, name)
        assert obj is not None, (kind, ns, name)
        self.cache.put(kind, obj)
        return obj

    async def event_reasons(self) -> list[tuple[str, str]]:
        await self.events.drain()
        return [(e["type"], e["reason"]) for e in self.api.events]


def harness(
    defaults: OperatorDefaults | None = None,
    policy: AgentPolicy | None = None,
    egress: EgressSettings | None = None,
) -> Harness:
    api = FakeKube()
    cache = Cache()
    store = Store(cache, resync_seconds=300.0)
    store.kube = cast(Kube, api)
    queue = WorkQueue(no_reconcile, workers=1)
    secrets = Secrets(store)
    events = Events(store)
    sip = AgentSIP(store, secrets, events, queue, (), 600.0)
    waiting: dict[tuple[str, str], int] = {}
    current = defaults or OperatorDefaults()
    agents = VoiceAgentReconciler(
        store,
        secrets,
        events,
        queue,
        sip,
        AgentTests(store, events),
        AgentRollouts(store, events, CanaryMetrics(current.prometheus_url), 75.0),
        Claims(),
        lambda: current,
        lambda ns, name: waiting.get((ns, name)),
        agent_policy=policy or AgentPolicy(),
        egress=egress,
        sip_poll_seconds=60.0,
    )
    knowledge = KnowledgeBaseReconciler(store, secrets, events, queue, lambda: current, egress=None)
    return Harness(api, cache, store, queue, events, agents, knowledge, waiting)
