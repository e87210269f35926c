"""The level-based reconcilers: read the cache, apply what differs, write status that changed."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, get_args

from kubevox_api import KnowledgeBase, VoiceAgent, contract, secret_refs
from kubevox_api.common import SecretKeySelector
from kubevox_api.knowledgebase import stored_knowledge_base
from kubevox_api.voiceagent import SIPTelephony
from pydantic import ValidationError

from .builders import OperatorDefaults, build_agent_children, build_ingest_plan, content_hash
from .builders.agent import AUTOSCALER_KINDS, OptionalKind, agent_selector
from .builders.common import child_name, stable_hash
from .builders.knowledge import parse_duration, run_id
from .builders.network import EgressSettings, agent_egress, knowledge_egress
from .cache import Cache
from .diff import contains
from .egress import Network
from .kube import KINDS, ApiError, Kube
from .metrics import RECONCILE_SECONDS, RECONCILES
from .names import Claims, agent_claim, conflict_problem
from .policy import HOLD_CHILDREN, AgentPolicy, agent_notices, agent_policy_problems
from .sip import LiveKitSIP, Owner, SIPError, desired_rule, desired_trunk
from .status import (
    AgentObservation,
    KnowledgeObservation,
    Problem,
    TelephonyObservation,
    agent_status,
    autoscaler_unavailable,
    job_outcome,
    knowledge_status,
    now_iso,
)
from .waiting_poll import WaitingPoll
from .workqueue import Key, WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")
SECRET_TTL = 10.0
COALESCE_SECONDS = 0.5
"""A child's status change (a rollout progressing) re-reconciles its owner this much later, so
that a burst of them becomes one status write."""
OPTIONAL_CRDS: dict[str, OptionalKind] = {KINDS[k].crd: k for k in get_args(OptionalKind)}
"""CRDs that may be absent and come or go at run time, by name: children of their kinds are
built only while the CRD is served."""
LISTED_KINDS = frozenset(
    (
        contract.VOICE_AGENT_KIND,
        contract.KNOWLEDGE_BASE_KIND,
        "ConfigMap",
        "ServiceAccount",
        "Service",
        "RoleBinding",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "Pod",
    )
)
"""Watched kinds whose initial listing completes before any reconcile (kopf's index barrier):
once synced, a cache miss means the object does not exist, with no GET to make sure."""


def deleted_for(body: Obj) -> float:
    """Seconds since the object's deletionTimestamp (0 when it has none)."""
    stamp = (body.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return 0.0
    return time.time() - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


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


def owned_by(obj: Obj, uid: str | None) -> bool:
    """Whether ``obj`` carries an owner reference to the object with ``uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(r.get("uid") == uid for r in refs)


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


def secret_problem(secret: Obj | None, ns: str, ref: SecretKeySelector) -> Problem | None:
    """What is wrong with a referenced Secret key, if anything (``secret`` as read, or None)."""
    if secret is None:
        return Problem("SecretMissing", f"Secret {ns}/{ref.name} not found")
    if ref.key not in (secret.get("data") or {}) and ref.key not in (
        secret.get("stringData") or {}
    ):
        return Problem("SecretKeyMissing", f"Secret {ns}/{ref.name} has no key {ref.key!r}")
    return None


@dataclass
class Settings:
    defaults: OperatorDefaults
    workers: int = 16
    resync_seconds: float = 300.0
    retry_max_seconds: float = 60.0
    sip_poll_seconds: float = 60.0
    """LiveKit has no watch: agents with telephony are compared with it this often."""
    waiting_poll_seconds: float = 1.0
    """How often LiveKit is asked for calls waiting for a worker (see waiting.py)."""
    agent_policy: AgentPolicy = field(default_factory=AgentPolicy)
    """What VoiceAgent authors may choose (images, ServiceAccounts)."""
    egress: EgressSettings | None = None
    """The default-deny egress NetworkPolicies' settings; None: the operator makes none."""
    livekit_allowed: tuple[Network, ...] = ()
    """Internal addresses the operator may still contact as a spec.livekit.url (egress.py)."""
    sip_cleanup_timeout_seconds: float = 600.0
    """How long a deleted VoiceAgent waits for LiveKit to remove its SIP objects before its
    finalizer is released anyway (with an Event naming what may be left)."""


class ChildProblem(Exception):
    """A child the operator may not or cannot write: reported in its owner's status."""

    expected = True

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def child_owner_uid(obj: Obj) -> str | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return refs[0].get("uid") if refs else None


def trusted_job_pods(pods: list[Obj], job: Obj | None) -> list[Obj]:
    """The pods the Job controller made for ``job``: a ``job-name`` label is anyone's to set,
    a controller reference to the Job's uid is not given to pods it did not create."""
    uid = ((job or {}).get("metadata") or {}).get("uid")
    return [
        p
        for p in pods
        if uid
        and any(
            r.get("uid") == uid and r.get("controller") and r.get("kind") == "Job"
            for r in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


class Controller:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.defaults = settings.defaults
        self.cache = Cache()
        self.queue = WorkQueue(
            self._dispatch, workers=settings.workers, retry_max=settings.retry_max_seconds
        )
        self.kube: Kube | None = None
        self.connected = asyncio.Event()
        self.synced = asyncio.Event()
        """kopf has listed every kind in LISTED_KINDS into the cache (set by the first event)."""
        self._applied: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._secrets: dict[tuple[str, str], tuple[float, Obj | None]] = {}
        # The last LiveKit url/key/secret that worked per agent: its SIP objects can still be
        # removed when the namespace's deletion took the credentials Secret first.
        self._livekit: dict[tuple[str, str], tuple[str, str, str]] = {}
        # resourceVersion of the operator's own last write per object: its watch echo is skipped.
        self._wrote: dict[tuple[str, str, str], str] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._looked: dict[Key, float] = {}  # when each key was last reconciled (monotonic)
        self._fresh: dict[Key, float] = {}  # when a CRD kind's object was last read (monotonic)
        self._resync_task: asyncio.Task[None] | None = None
        self._host = socket.gethostname()
        self.claims = Claims()  # LiveKit agent names, to report two agents sharing one
        self.waiting = WaitingPoll(
            self.cache,
            self._livekit_credentials,
            lambda key: self.queue.add((contract.VOICE_AGENT_KIND, *key)),
            contract.LABEL_VOICE_AGENT,
            settings.waiting_poll_seconds,
            settings.livekit_allowed,
        )
        self._waiting_task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.queue.start()
        self._resync_task = asyncio.create_task(self._resync())
        self._waiting_task = asyncio.create_task(self._after_sync(self.waiting.run))

    async def stop(self) -> None:
        for task in (self._resync_task, self._waiting_task):
            if task:
                task.cancel()
        await self.queue.stop()
        if self._background:  # Events still being posted: a courtesy, given a moment
            await asyncio.wait(self._background, timeout=5)
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
        meta = obj.get("metadata", {})
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = (kind, ns, name)
        old = self.cache.get(kind, ns, name)
        if event_type == "DELETED":
            self._forget(key)
        elif event_type is not None and self._wrote.get(key) == meta.get("resourceVersion"):
            # The watch echoing the operator's own write: the reconcile that made it saw it.
            del self._wrote[key]
            return
        else:
            self.cache.put(kind, obj)
            if kind not in LISTED_KINDS:
                self._fresh[key] = time.monotonic()
        if kind == contract.VOICE_AGENT_KIND:
            claim = None if event_type == "DELETED" else agent_claim(obj)
            for other in self.claims.update(key, claim):
                self.queue.add((contract.VOICE_AGENT_KIND, other[1], other[2]))
        if kind in (contract.VOICE_AGENT_KIND, contract.KNOWLEDGE_BASE_KIND):
            st = obj.get("status") or {}
            # A spec nobody has reconciled yet goes first: someone is waiting for it.
            urgent = event_type != "DELETED" and st.get("observedGeneration") != meta.get(
                "generation"
            )
            self.queue.add(key, urgent=urgent)
            if kind == contract.KNOWLEDGE_BASE_KIND:
                for va in self._agents_using(ns, name):
                    self.queue.add((contract.VOICE_AGENT_KIND, ns, va))
            return
        labels = meta.get("labels") or {}
        owners = [
            (owner, ns, labels[label])
            for owner, label in (
                (contract.VOICE_AGENT_KIND, contract.LABEL_VOICE_AGENT),
                (contract.KNOWLEDGE_BASE_KIND, contract.LABEL_KNOWLEDGE_BASE),
            )
            if label in labels
        ]
        for owner in owners:
            if event_type != "DELETED" and (kind == "Pod" or status_only(old, obj)):
                self.queue.add_after(owner, COALESCE_SECONDS)  # only the owner's status moves
            else:
                self.queue.add(owner)  # drift: repair now

    def observe_crd(self, event_type: str | None, crd: Obj) -> None:
        """One of OPTIONAL_CRDS appeared or went away: agents gain or lose children of its kind
        (a ServiceMonitor; a ScaledObject, or AutoscalerUnavailable, for autoscaler keda)."""
        kind = OPTIONAL_CRDS.get((crd.get("metadata") or {}).get("name", ""))
        if kind is None:
            return
        present = event_type != "DELETED" and serves(crd, KINDS[kind].version)
        if present == (kind in self.defaults.served):
            return
        served = self.defaults.served | {kind} if present else self.defaults.served - {kind}
        self.defaults = replace(self.defaults, served=served)
        log.info("%s CRD %s", kind, "present" if present else "gone")
        if not present:  # they went with their CRD, and kopf stops their watch without events
            for obj in list(self.cache.items(kind)):
                meta = obj["metadata"]
                self._forget((kind, meta["namespace"], meta["name"]))
        for va in self.cache.items(contract.VOICE_AGENT_KIND):
            self.queue.add(
                (contract.VOICE_AGENT_KIND, va["metadata"]["namespace"], va["metadata"]["name"])
            )

    def _forget(self, key: tuple[str, str, str]) -> None:
        """An object gone from the cluster: nothing about it is kept."""
        self.cache.delete(*key)
        self._applied.pop(key, None)
        self._wrote.pop(key, None)
        self._fresh.pop(key, None)

    def _agents_using(self, ns: str, kb: str) -> list[str]:
        return [
            va["metadata"]["name"]
            for va in self.cache.items(contract.VOICE_AGENT_KIND, ns)
            if any(r.get("name") == kb for r in va.get("spec", {}).get("knowledgeBases", []) or [])
        ]

    # --- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, key: Key) -> float | None:
        await self.connected.wait()
        await self.synced.wait()
        kind = key[0]
        started = time.perf_counter()
        outcome = "error"
        self._looked[key] = time.monotonic()
        try:
            if kind == contract.VOICE_AGENT_KIND:
                again, outcome = await self.reconcile_agent(key)
            else:
                again, outcome = await self.reconcile_knowledge_base(key)
            return again
        finally:
            if outcome == "deleted":
                self._looked.pop(key, None)
            RECONCILES.labels(kind=kind, outcome=outcome).inc()
            RECONCILE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)

    @property
    def api(self) -> Kube:
        assert self.kube is not None
        return self.kube

    # --- shared helpers -------------------------------------------------------------------------

    async def _secret(self, ns: str, name: str) -> Obj | None:
        """A Secret, read on demand (the operator may get Secrets, never list or watch them)."""
        hit = self._secrets.get((ns, name))
        if hit and hit[1] is not None and time.monotonic() - hit[0] < SECRET_TTL:
            return hit[1]
        obj = await self.api.get("Secret", ns, name)
        self._secrets[(ns, name)] = (time.monotonic(), obj)
        return obj

    async def _read_secrets(self, ns: str, refs: list[SecretKeySelector]) -> dict[str, Obj | None]:
        """The Secrets ``refs`` name, each read once and all at once: a new object's first
        reconcile waits one round trip for them, not one per Secret."""
        names = list(dict.fromkeys(r.name for r in refs))
        fetched = await asyncio.gather(*(self._secret(ns, n) for n in names))
        return dict(zip(names, fetched, strict=True))

    async def _secret_values(
        self, ns: str, name: str, keys: list[str], what: str
    ) -> list[str] | Problem:
        """Values of a Secret's keys (never logged, never in status), or what is missing."""
        secret = await self._secret(ns, name)
        if secret is None:
            return Problem("SecretMissing", f"Secret {ns}/{name} ({what}) not found")
        data = secret.get("data") or {}
        out = []
        for k in keys:
            if k not in data:
                return Problem("SecretKeyMissing", f"Secret {ns}/{name} ({what}) has no key {k!r}")
            out.append(base64.b64decode(data[k]).decode("utf-8", "replace").rstrip("\r\n"))
        return out

    async def ensure(self, obj: Obj) -> bool:
        """Apply ``obj`` unless the live object already carries it. True when it wrote."""
        kind, meta = obj["kind"], obj["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        live = self.cache.get(*key)
        now = time.monotonic()
        if kind not in LISTED_KINDS and (
            live is None or now - self._fresh.get(key, 0.0) > self.settings.resync_seconds
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
        self._remember(kind, result)
        if kind not in LISTED_KINDS:
            self._fresh[key] = now
        self._applied[key] = (digest, result["metadata"].get("resourceVersion", ""))
        log.info("applied %s %s/%s", kind, key[1], key[2])
        return True

    async def write_status(self, kind: str, body: Obj, status: Obj) -> bool:
        current = body.get("status") or {}
        wanted = {k: v for k, v in status.items() if v is not None}
        if current == wanted:
            return False
        patch: Obj = dict(wanted)
        for k in current:
            if k not in wanted:
                patch[k] = None
        meta = body["metadata"]
        result = await self.api.patch_status(kind, meta["namespace"], meta["name"], patch)
        self._remember(kind, result)
        if kind == contract.KNOWLEDGE_BASE_KIND:
            # Its watch echo is skipped, yet its agents may be waiting for exactly this status
            # (Ready after its Job): they look again now.
            for va in self._agents_using(meta["namespace"], meta["name"]):
                self.queue.add((contract.VOICE_AGENT_KIND, meta["namespace"], va))
        return True

    def _remember(self, kind: str, result: Obj) -> None:
        """The object as the operator's own write left it (its watch echo is then skipped)."""
        meta = result["metadata"]
        self.cache.put(kind, result)
        self._wrote[(kind, meta["namespace"], meta["name"])] = meta.get("resourceVersion", "")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def event(self, body: Obj, type_: str, reason: str, message: str) -> None:
        """Posts an Event in the background: no reconcile waits for a courtesy."""
        self._spawn(self._post_event(body, type_, reason, message))

    async def _post_event(self, body: Obj, type_: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = now_iso()
        try:
            await self.api.create_event(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "generateName": f"{meta['name']}.",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": body.get("apiVersion"),
                        "kind": body.get("kind"),
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message[:1000],
                    "source": {"component": contract.MANAGED_BY},
                    "reportingComponent": contract.MANAGED_BY,
                    "reportingInstance": self._host,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                }
            )
        except (ApiError, OSError) as exc:  # an event is a courtesy; never fail for it
            log.debug("cannot post event: %s", exc)

    def _transitions(self, body: Obj, old: Obj, new: Obj, good: str) -> None:
        """Events for the notable transitions: Ready flips, a new Degraded/Failed reason."""

        def cond(st: Obj, t: str) -> tuple[str, str, str]:
            c: Obj = next((c for c in st.get("conditions", []) or [] if c.get("type") == t), {})
            return c.get("status", ""), c.get("reason", ""), c.get("message", "")

        bad = "Degraded" if body.get("kind") == contract.VOICE_AGENT_KIND else "Failed"
        r_old, r_new = cond(old, "Ready"), cond(new, "Ready")
        d_old, d_new = cond(old, bad), cond(new, bad)
        if d_new[0] == "True" and d_new[:2] != d_old[:2]:
            self.event(body, "Warning", d_new[1], d_new[2])
        if r_new[0] != r_old[0] and r_new[0] == "True":
            self.event(body, "Normal", good, r_new[2])
        elif r_new[0] == "False" and r_old[0] == "True":
            self.event(body, "Warning", "NotReady", f"{r_new[1]}: {r_new[2]}")

    # --- VoiceAgent -----------------------------------------------------------------------------

    async def reconcile_agent(self, key: Key) -> tuple[float | None, str]:
        _, ns, name = key
        body = self.cache.get(contract.VOICE_AGENT_KIND, ns, name)
        try:
            meta = (body or {}).get("metadata", {})
            if meta.get("deletionTimestamp") and contract.SIP_FINALIZER in (
                meta.get("finalizers") or []
            ):
                assert body is not None
                return await self._finalize_sip(key, body)
            if body is None or body["metadata"].get("deletionTimestamp"):
                self.queue.forget(key)  # the controller-manager garbage-collects the children
                self._livekit.pop((ns, name), None)
                return None, "deleted"
            return await self._reconcile_agent(key, body)
        except ApiError as exc:
            if exc.status == 403 and "being terminated" in exc.message:
                return None, "deleted"  # its namespace is going away, and the agent with it
            raise

    async def _reconcile_agent(self, key: Key, body: Obj) -> tuple[float | None, str]:
        _, ns, name = key
        try:
            agent = VoiceAgent.model_validate(body)
        except ValidationError as exc:
            log.warning("VoiceAgent %s/%s does not parse: %s", ns, name, exc)
            return None, "invalid"
        blocking: list[Problem] = []
        waiting: list[str] = []
        kbs: dict[str, KnowledgeBase] = {}
        secrets: list[SecretKeySelector] = list(secret_refs(agent.spec))
        for ref in agent.spec.knowledge_bases:
            kb_body = self.cache.get(contract.KNOWLEDGE_BASE_KIND, ns, ref.name)
            if kb_body is None:
                blocking.append(
                    Problem("KnowledgeBaseMissing", f"KnowledgeBase {ns}/{ref.name} not found")
                )
                continue
            kb, _ = stored_knowledge_base(kb_body)
            kbs[ref.name] = kb
            secrets.append(kb.spec.store.redis_url_secret_ref)
            if kb.spec.embedding.credentials is not None:
                secrets.append(kb.spec.embedding.credentials.secret_key_ref)
            ready: Obj = next(
                (
                    c
                    for c in (kb_body.get("status") or {}).get("conditions", []) or []
                    if c.get("type") == "Ready"
                ),
                {},
            )
            if ready.get("status") != "True":
                phase = (kb_body.get("status") or {}).get("phase")
                if phase == "Failed":
                    blocking.append(
                        Problem(
                            "KnowledgeBaseFailed",
                            f"KnowledgeBase {ns}/{ref.name} failed: {ready.get('message', '')}",
                        )
                    )
                else:
                    waiting.append(ref.name)
        read = await self._read_secrets(ns, secrets)
        seen: set[tuple[str, str]] = set()
        missing: set[str] = set()
        for sref in secrets:
            if (sref.name, sref.key) in seen or sref.name in missing:
                continue
            seen.add((sref.name, sref.key))
            problem = secret_problem(read[sref.name], ns, sref)
            if problem:
                blocking.append(problem)
                if problem.reason == "SecretMissing":
                    missing.add(sref.name)

        # A restricted image or ServiceAccount: nothing is written, the running pods stay.
        blocking += agent_policy_problems(agent, self.settings.agent_policy, self.defaults.image)
        digest: str | None = (body.get("status") or {}).get("configHash")
        wrote = False
        refused: list[Problem] = []  # children the operator may not or cannot write
        no_autoscaler: Problem | None = None
        children = None
        if not any(p.reason in HOLD_CHILDREN | {"KnowledgeBaseMissing"} for p in blocking):
            try:
                children = build_agent_children(agent, body, kbs, self.defaults)
            except ValidationError as exc:  # e.g. a name too long for the runtime config
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                refused.append(
                    Problem(
                        "ChildRejected",
                        f"the workers' configuration cannot be built: {where}: {err['msg']}",
                    )
                )
        if children is not None:
            # The egress policy first: new worker pods start restricted.
            applied, refused = await self._ensure_all(
                agent_egress(agent, body, kbs, read, self.settings.egress)
            )
            wrote |= applied
            digest = children.config_hash
            no_autoscaler = autoscaler_unavailable(
                agent.spec.scaling.autoscaler, children.autoscaler_missing
            )
            # Before the wanted one is applied: two autoscalers must never drive the Deployment
            # at once (and KEDA's webhook refuses a ScaledObject while an HPA targets it).
            wrote |= await self._remove_other_autoscaler(agent, body)
            # Independent objects: applied concurrently (the pod waits for its ConfigMap anyway).
            applied, problems = await self._ensure_all(children.objects)
            wrote |= applied
            refused += problems
        telephony: TelephonyObservation | None = None
        sip = agent.spec.telephony.sip if agent.spec.telephony else None
        if sip is not None:
            body, telephony, sip_wrote = await self._reconcile_sip(agent, body, sip)
            wrote |= sip_wrote
        elif contract.SIP_FINALIZER in (body["metadata"].get("finalizers") or []):
            # Telephony was removed from the spec: its LiveKit objects go, then the finalizer.
            problem = await self._remove_sip(agent, body)
            if problem is not None:
                prev = body.get("status") or {}
                telephony = TelephonyObservation(
                    prev.get("sipTrunkId"), prev.get("sipDispatchRuleId"), problem
                )
            wrote |= problem is None
        conflict = conflict_problem(
            agent.effective_agent_name, agent.spec.livekit.url, self.claims.others(key)
        )
        child = child_name(name)  # the Deployment's and the autoscaler's name
        selector = agent_selector(agent)
        pods = [
            p
            for p in self.cache.with_label("Pod", ns, contract.LABEL_VOICE_AGENT, name)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        status = agent_status(
            AgentObservation(
                generation=body["metadata"].get("generation", 0),
                previous=body.get("status") or {},
                agent_name=agent.effective_agent_name,
                config_hash=digest,
                blocking=blocking,
                waiting=waiting,
                deployment=self.cache.get("Deployment", ns, child),
                autoscaler=self.cache.get(
                    AUTOSCALER_KINDS[agent.spec.scaling.autoscaler], ns, child
                ),
                autoscaler_unavailable=no_autoscaler,
                pods=pods,
                telephony=telephony,
                scales_to_zero=agent.spec.scaling.scales_to_zero,
                waiting_calls=self.waiting.counts.get((ns, name)),
                notices=[*agent_notices(agent), *refused, *([conflict] if conflict else [])],
            )
        )
        old = body.get("status") or {}
        wrote |= await self.write_status(contract.VOICE_AGENT_KIND, body, status)
        self._transitions(body, old, status, "AgentReady")
        if blocking or refused or (telephony is not None and telephony.problem is not None):
            # Secrets, LiveKit and others' objects are not watched: look again, later and later.
            return self.queue.backoff(key), "blocked"
        self.queue.reset(key)
        again = self.settings.sip_poll_seconds if telephony is not None else None
        return again, "changed" if wrote else "unchanged"

    async def _ensure_all(self, objects: list[Obj]) -> tuple[bool, list[Problem]]:
        """Applies independent children concurrently: whether any was written, and the
        problems of those refused (the others are still applied)."""
        results = await asyncio.gather(*(self.ensure(o) for o in objects), return_exceptions=True)
        problems = [r.problem for r in results if isinstance(r, ChildProblem)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, ChildProblem):
                raise r
        return any(r is True for r in results), problems

    async def _remove_other_autoscaler(self, agent: VoiceAgent, body: Obj) -> bool:
        """Deletes the agent's autoscaler of the kind spec.scaling.autoscaler does not name, if
        this VoiceAgent owns it (never a namesake of someone else's). KEDA's own HPA
        (``keda-hpa-<name>``) is KEDA's child: it goes with the ScaledObject."""
        meta = body["metadata"]
        ns, name = meta["namespace"], child_name(meta["name"])
        wanted = AUTOSCALER_KINDS[agent.spec.scaling.autoscaler]
        wrote = False
        for kind in AUTOSCALER_KINDS.values():
            # The cache is complete for HPAs (listed) and holds every ScaledObject the operator
            # applied or watched; one it missed is queued here by its watch event.
            live = self.cache.get(kind, ns, name)
            if kind == wanted or live is None or not owned_by(live, meta.get("uid")):
                continue
            await self.api.delete(kind, ns, name, uid=live["metadata"].get("uid"))
            self._forget((kind, ns, name))
            log.info(
                "deleted %s %s/%s: spec.scaling.autoscaler is %s",
                kind,
                ns,
                name,
                agent.spec.scaling.autoscaler,
            )
            wrote = True
        return wrote

    # --- VoiceAgent: declarative SIP --------------------------------------------------------------

    async def _livekit_credentials(
        self, agent: VoiceAgent, ns: str
    ) -> tuple[str, str, str] | Problem:
        ref = agent.spec.livekit.credentials_secret_ref
        values = await self._secret_values(
            ns, ref.name, [ref.api_key_key, ref.api_secret_key], "spec.livekit.credentialsSecretRef"
        )
        if isinstance(values, Problem):
            return values
        return agent.spec.livekit.url, values[0], values[1]

    async def _reconcile_sip(
        self, agent: VoiceAgent, body: Obj, sip: SIPTelephony
    ) -> tuple[Obj, TelephonyObservation, bool]:
        """Keeps the agent's LiveKit trunk and dispatch rule in step. Returns the (possibly
        patched) body, what to report and whether anything was written."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        prev = body.get("status") or {}
        known = (prev.get("sipTrunkId"), prev.get("sipDispatchRuleId"))
        wrote = False
        if contract.SIP_FINALIZER not in (meta.get("finalizers") or []):
            # Before anything exists in LiveKit, so that no deletion can leave it behind.
            body = await self._set_finalizer(body, add=True)
            wrote = True
        creds = await self._livekit_credentials(agent, ns)
        if isinstance(creds, Problem):
            return body, TelephonyObservation(*known, creds), wrote
        auth: tuple[str, str] | None = None
        if sip.auth is not None:
            values = await self._secret_values(
                ns,
                sip.auth.secret_ref,
                [sip.auth.username_key, sip.auth.password_key],
                "spec.telephony.sip.auth.secretRef",
            )
            if isinstance(values, Problem):
                return body, TelephonyObservation(*known, values), wrote
            auth = (values[0], values[1])
        owner = Owner(ns, name, meta.get("uid", ""))
        agent_name = agent.effective_agent_name
        try:
            async with LiveKitSIP(*creds, self.settings.livekit_allowed) as lk:
                result = await lk.sync(
                    owner,
                    desired_trunk(owner, sip, auth),
                    lambda trunk_id: desired_rule(owner, sip, agent_name, trunk_id),
                    known,
                )
        except SIPError as exc:
            before: Obj = next(
                (c for c in prev.get("conditions", []) or [] if c.get("type") == "TelephonyReady"),
                {},
            )
            # Logged once per new reason; the retries at backoff pace stay at debug level.
            new = before.get("reason") != exc.problem.reason
            log.log(
                logging.WARNING if new else logging.DEBUG,
                "VoiceAgent %s/%s: SIP not in step: %s",
                ns,
                name,
                exc.problem.message,
            )
            return body, TelephonyObservation(*known, exc.problem), wrote
        self._livekit[(ns, name)] = creds
        for what in result.writes:
            log.info("VoiceAgent %s/%s: SIP %s", ns, name, what)
        return (
            body,
            TelephonyObservation(result.trunk_id, result.rule_id),
            wrote or bool(result.writes),
        )

    async def _remove_sip(self, agent: VoiceAgent | None, body: Obj) -> Problem | None:
        """Deletes the agent's LiveKit SIP objects, then releases the finalizer. A Problem when
        LiveKit could not be asked (the finalizer stays, the caller retries)."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        creds: tuple[str, str, str] | Problem | None = (
            await self._livekit_credentials(agent, ns) if agent is not None else None
        )
        if not isinstance(creds, tuple):
            creds = self._livekit.get((ns, name))
        if creds is None:
            # Without credentials LiveKit cannot be asked at all; blocking the deletion forever
            # (e.g. the namespace is going away and took the Secret first) would be worse.
            prev = body.get("status") or {}
            log.warning(
                "VoiceAgent %s/%s: no LiveKit credentials to remove SIP trunk %s and rule %s; "
                "releasing the finalizer, remove them by hand",
                ns,
                name,
                prev.get("sipTrunkId"),
                prev.get("sipDispatchRuleId"),
            )
        else:
            try:
                async with LiveKitSIP(*creds, self.settings.livekit_allowed) as lk:
                    gone = await lk.remove(Owner(ns, name, meta.get("uid", "")))
            except SIPError as exc:
                log.warning(
                    "VoiceAgent %s/%s: cannot remove SIP objects yet: %s",
                    ns,
                    name,
                    exc.problem.message,
                )
                return exc.problem
            if gone:
                log.info("VoiceAgent %s/%s: SIP deleted %s", ns, name, ", ".join(gone))
        await self._set_finalizer(body, add=False)
        self._livekit.pop((ns, name), None)
        return None

    async def _finalize_sip(self, key: Key, body: Obj) -> tuple[float | None, str]:
        try:
            agent: VoiceAgent | None = VoiceAgent.model_validate(body)
        except ValidationError:
            agent = None  # admission rejects such specs; use remembered credentials if any
        problem = await self._remove_sip(agent, body)
        if problem is not None:
            left = self.settings.sip_cleanup_timeout_seconds - deleted_for(body)
            if left > 0:
                return min(self.queue.backoff(key), left), "blocked"
            await self._abandon_sip(body, problem)
        self.queue.forget(key)
        return None, "deleted"

    async def _abandon_sip(self, body: Obj, problem: Problem) -> None:
        """LiveKit stayed out of reach for the whole wait: the VoiceAgent (and its namespace)
        may go, and the Event and the log say what may be left there."""
        meta, st = body["metadata"], body.get("status") or {}
        message = (
            f"LiveKit did not answer for {self.settings.sip_cleanup_timeout_seconds:g}s after "
            f"deletion ({problem.message}); finalizer released: SIP trunk "
            f"{st.get('sipTrunkId') or '(id unknown)'} and dispatch rule "
            f"{st.get('sipDispatchRuleId') or '(id unknown)'} (named "
            f"kubevox/{meta['namespace']}/{meta['name']}) may be left in LiveKit; delete them "
            "there"
        )
        log.warning("VoiceAgent %s/%s: %s", meta["namespace"], meta["name"], message)
        await self._post_event(body, "Warning", "SIPCleanupAbandoned", message)
        await self._set_finalizer(body, add=False)
        self._livekit.pop((meta["namespace"], meta["name"]), None)

    async def _set_finalizer(self, body: Obj, *, add: bool) -> Obj:
        """Adds or removes the SIP finalizer by a conditional JSON patch (a concurrent change
        fails the ``test`` op and is retried, never overwritten)."""
        meta = body["metadata"]
        current: list[str] = list(meta.get("finalizers") or [])
        rv = meta.get("resourceVersion")
        if add:
            ops: list[Obj] = (
                [
                    {"op": "test", "path": "/metadata/finalizers", "value": current},
                    {
                        "op": "add",
                        "path": "/metadata/finalizers/-",
                        "value": contract.SIP_FINALIZER,
                    },
                ]
                if current
                else [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                    {
                        "op": "add",
                        "path": "/metadata/finalizers",
                        "value": [contract.SIP_FINALIZER],
                    },
                ]
            )
        else:
            i = current.index(contract.SIP_FINALIZER)
            ops = [
                {
                    "op": "test",
                    "path": f"/metadata/finalizers/{i}",
                    "value": contract.SIP_FINALIZER,
                },
                {"op": "remove", "path": f"/metadata/finalizers/{i}"},
            ]
        try:
            result = await self.api.json_patch(
                contract.VOICE_AGENT_KIND, meta["namespace"], meta["name"], ops
            )
        except ApiError as exc:
            if exc.status == 404 and not add:
                return body  # already gone
            raise
        if not result["metadata"].get("deletionTimestamp"):
            self._remember(
                contract.VOICE_AGENT_KIND, result
            )  # never resurrect one whose deletion completes
        return result

    # --- KnowledgeBase --------------------------------------------------------------------------

    async def _sources(
        self, kb: KnowledgeBase, ns: str
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], list[Problem]]:
        cms: dict[str, dict[str, str]] = {}
        secrets: dict[str, dict[str, str]] = {}
        problems: list[Problem] = []
        for src in kb.spec.sources:
            if src.config_map is not None:
                sel = src.config_map
                cm = await self.api.get("ConfigMap", ns, sel.name)
                if cm is None:
                    problems.append(
                        Problem(
                            "SourceMissing",
                            f"ConfigMap {ns}/{sel.name} (source {src.name}) not found",
                        )
                    )
                    continue
                data = dict(cm.get("data") or {})
                data.update({k: f"b64:{v}" for k, v in (cm.get("binaryData") or {}).items()})
                if sel.key and sel.key not in data:
                    problems.append(
                        Problem(
                            "SourceMissing",
                            f"ConfigMap {ns}/{sel.name} has no key {sel.key!r} (source {src.name})",
                        )
                    )
                cms[sel.name] = data
            elif src.secret is not None:
                secret = await self._secret(ns, src.secret.name)
                if secret is None or src.secret.key not in (secret.get("data") or {}):
                    problems.append(
                        Problem(
                            "SourceMissing",
                            f"Secret {ns}/{src.secret.name} key {src.secret.key!r} "
                            f"(source {src.name}) not found",
                        )
                    )
                    continue
                raw = secret.get("data") or {}
                secrets[src.secret.name] = {
                    k: base64.b64decode(v).decode("utf-8", "replace") for k, v in raw.items()
                }
        refs = [kb.spec.store.redis_url_secret_ref] + (
            [kb.spec.embedding.credentials.secret_key_ref] if kb.spec.embedding.credentials else []
        )
        read = await self._read_secrets(ns, refs)
        for ref in refs:
            problem = secret_problem(read[ref.name], ns, ref)
            if problem:
                problems.append(problem)
        return cms, secrets, problems

    async def reconcile_knowledge_base(self, key: Key) -> tuple[float | None, str]:
        _, ns, name = key
        body = self.cache.get(contract.KNOWLEDGE_BASE_KIND, ns, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.queue.forget(key)
            return None, "deleted"
        try:
            return await self._reconcile_knowledge_base(key, body)
        except ApiError as exc:
            if exc.status == 403 and "being terminated" in exc.message:
                return None, "deleted"
            raise

    async def _reconcile_knowledge_base(self, key: Key, body: Obj) -> tuple[float | None, str]:
        _, ns, name = key
        try:
            kb, note = stored_knowledge_base(body)
        except ValidationError as exc:
            log.warning("KnowledgeBase %s/%s does not parse: %s", ns, name, exc)
            return None, "invalid"
        prev: Obj = body.get("status") or {}
        if note and prev.get("observedGeneration") != body["metadata"].get("generation"):
            log.warning("KnowledgeBase %s/%s: %s", ns, name, note)
            self.event(body, "Warning", "RefreshIntervalRaised", note)  # once per generation
        cms, secrets, blocking = await self._sources(kb, ns)
        digest: str | None = None
        job: Obj | None = None
        job_name: str | None = prev.get("jobName")
        again: float | None = None
        wrote = False
        if not blocking:
            digest = content_hash(kb, cms, secrets)
            job_name, run, again = self._choose_run(kb, prev, digest, ns)
            if run is not None:  # a run for this content is wanted: make sure it exists
                plan = build_ingest_plan(
                    kb, body, digest, run, self.defaults.image, self.defaults.ingest_allowed_cidrs
                )
                job_name = plan.job["metadata"]["name"]
                try:
                    redis = await self._secret(ns, kb.spec.store.redis_url_secret_ref.name)
                    for policy in knowledge_egress(kb, body, redis, self.settings.egress):
                        wrote |= await self.ensure(policy)  # before the Job's pods start
                    wrote |= await self.ensure(plan.config_map)
                    job = self.cache.get("Job", ns, job_name) or await self.api.get(
                        "Job", ns, job_name
                    )
                    if job is None:
                        wrote |= await self.ensure(plan.job)
                        job = self.cache.get("Job", ns, job_name)
                    elif not owned_by(job, body["metadata"].get("uid")):
                        raise ChildProblem(
                            Problem("ChildConflict", f"Job {ns}/{job_name} is not this object's")
                        )
                    else:
                        self.cache.put("Job", job)
                except ChildProblem as exc:
                    blocking.append(exc.problem)
                    job = None
            elif job_name:
                job = self.cache.get("Job", ns, job_name)
        pods = (
            trusted_job_pods(self.cache.with_label("Pod", ns, "job-name", job_name), job)
            if job_name
            else []
        )
        obs = KnowledgeObservation(
            generation=body["metadata"].get("generation", 0),
            previous=prev,
            index_name=kb.index_name,
            content_hash=digest,
            job_name=job_name,
            blocking=blocking,
            job=job,
            pods=pods,
        )
        status = (
            knowledge_status(obs)
            if (job_name or blocking)
            else {**prev, "observedGeneration": obs.generation}
        )
        wrote |= await self.write_status(contract.KNOWLEDGE_BASE_KIND, body, status)
        self._transitions(body, prev, status, "Indexed")
        if job_outcome(job)[0] in ("Complete", "Failed") and job_name:
            await self._delete_superseded_jobs(ns, name, job_name)
        if blocking:
            return self.queue.backoff(key), "blocked"
        self.queue.reset(key)
        return again, "changed" if wrote else "unchanged"

    def _choose_run(
        self, kb: KnowledgeBase, prev: Obj, digest: str, ns: str
    ) -> tuple[str | None, str | None, float | None]:
        """Which ingestion run reflects the current content. Returns (job name of the current
        run, run id when a run must exist — None when the indexed content is already current
        and no Job needs to exist —, seconds after which to look again)."""
        interval = parse_duration(kb.spec.refresh_interval) if kb.spec.refresh_interval else None
        current = prev.get("jobName")
        cur_job = self.cache.get("Job", ns, current) if current else None
        cur_run = ((cur_job or {}).get("metadata", {}).get("labels") or {}).get(
            contract.LABEL_INGEST_RUN
        )
        cur_hash = ((cur_job or {}).get("metadata", {}).get("labels") or {}).get(
            contract.LABEL_CONTENT_HASH
        )
        if cur_job is not None and cur_hash == digest:
            same_run: str | None = cur_run
        elif cur_job is None and prev.get("contentHash") == digest:
            same_run = None  # indexed and current; its Job is gone, which is fine
        else:
            epoch = int(time.time() // interval) if interval else None
            return None, run_id(digest, epoch), None
        if interval is not None and prev.get("lastIndexedTime"):
            indexed = datetime.fromisoformat(
                str(prev["lastIndexedTime"]).replace("Z", "+00:00")
            ).timestamp()
            due_in = indexed + interval - time.time()
            running = cur_job is not None and job_outcome(cur_job)[0] == "Running"
            if due_in <= 0 and not running:
                return None, run_id(digest, int(time.time() // interval)), None
            return current, same_run, max(due_in, 1.0)
        return current, same_run, None

    async def _delete_superseded_jobs(self, ns: str, kb: str, keep: str) -> None:
        for job in self.cache.with_label("Job", ns, contract.LABEL_KNOWLEDGE_BASE, kb):
            name = job["metadata"]["name"]
            if name != keep and not job["metadata"].get("deletionTimestamp"):
                await self.api.delete("Job", ns, name)
