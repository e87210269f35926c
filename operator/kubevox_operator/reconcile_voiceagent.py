"""The VoiceAgent reconciler: read the cache, apply the children that differ, keep the SIP
objects in step (reconcile_sip.py), write the status that changed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubevox_api import KnowledgeBase, VoiceAgent, contract, secret_refs
from kubevox_api.common import SecretKeySelector
from kubevox_api.knowledgebase import stored_knowledge_base
from pydantic import ValidationError

from .agent_test_runs import AgentTests, TestsObserved
from .builders import OperatorDefaults, build_agent_children
from .builders.agent import agent_selector
from .builders.autoscaling import AUTOSCALER_KINDS
from .builders.common import child_name
from .builders.network import EgressSettings, agent_egress, recordings_policy_name
from .builders.recording import expiry_name
from .builders.revision import REVISION_KIND, build_revision, revision_name
from .builders.sizing import resources_fit, worker_resources
from .builders.web import web_name, web_policy_name
from .events import Events
from .invalid_spec import report_invalid_spec
from .kube import ApiError
from .names import Claims, conflict_problem
from .policy import HOLD_CHILDREN, AgentPolicy, agent_notices, agent_policy_problems
from .reconcile_rollout import AgentRollouts, RolloutPlan
from .reconcile_sip import AgentSIP
from .secret_reader import Secrets, secret_problem
from .status import (
    AgentObservation,
    Problem,
    TelephonyObservation,
    agent_status,
    autoscaler_unavailable,
)
from .status_tests import revisions
from .store import Store, owned_by
from .workqueue import Key, WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")


class VoiceAgentReconciler:
    def __init__(
        self,
        store: Store,
        secrets: Secrets,
        events: Events,
        queue: WorkQueue,
        sip: AgentSIP,
        tests: AgentTests,
        rollouts: AgentRollouts,
        claims: Claims,
        defaults: Callable[[], OperatorDefaults],
        waiting_calls: Callable[[str, str], int | None],
        *,
        agent_policy: AgentPolicy,
        egress: EgressSettings | None,
        sip_poll_seconds: float,
    ) -> None:
        self.store = store
        self.cache = store.cache
        self.secrets = secrets
        self.events = events
        self.queue = queue
        self.sip = sip
        self.tests = tests
        self.rollouts = rollouts
        self.claims = claims
        self.defaults = defaults
        """The operator's defaults now (the optional CRDs served change at run time)."""
        self.waiting_calls = waiting_calls
        """Calls waiting for a worker of agent (namespace, name), as LiveKit last said."""
        self.agent_policy = agent_policy
        self.egress = egress
        self.sip_poll_seconds = sip_poll_seconds

    async def reconcile(self, key: Key) -> tuple[float | None, str]:
        """Returns (seconds after which to look again or None, outcome for the metrics)."""
        _, ns, name = key
        body = self.cache.get(contract.VOICE_AGENT_KIND, ns, name)
        try:
            meta = (body or {}).get("metadata", {})
            if meta.get("deletionTimestamp") and contract.SIP_FINALIZER in (
                meta.get("finalizers") or []
            ):
                assert body is not None
                return await self.sip.finalize(key, body)
            if body is None or body["metadata"].get("deletionTimestamp"):
                self.queue.forget(key)  # the controller-manager garbage-collects the children
                self.sip.forget(ns, name)
                await self.tests.orphaned(ns, name)
                return None, "deleted"
            return await self._reconcile(key, body)
        except ApiError as exc:
            if exc.status == 403 and "being terminated" in exc.message:
                return None, "deleted"  # its namespace is going away, and the agent with it
            raise

    async def _reconcile(self, key: Key, body: Obj) -> tuple[float | None, str]:
        _, ns, name = key
        try:
            agent = VoiceAgent.model_validate(body)
        except ValidationError as exc:
            await report_invalid_spec(self.store, self.events, contract.VOICE_AGENT_KIND, body, exc)
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
            try:
                kb, _ = stored_knowledge_base(kb_body)
            except ValidationError:  # its own status and Events say why
                blocking.append(
                    Problem("KnowledgeBaseInvalid", f"KnowledgeBase {ns}/{ref.name} is not valid")
                )
                continue
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
        read = await self.secrets.read(ns, secrets)
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

        defaults = self.defaults()
        # A restricted image or ServiceAccount: nothing is written, the running pods stay.
        blocking += agent_policy_problems(agent, self.agent_policy, defaults.image)
        digest: str | None = (body.get("status") or {}).get("configHash")
        wrote = False
        refused: list[Problem] = []  # children the operator may not or cannot write
        no_autoscaler: Problem | None = None
        children = None
        if not any(
            p.reason in HOLD_CHILDREN | {"KnowledgeBaseMissing", "KnowledgeBaseInvalid"}
            for p in blocking
        ):
            try:
                children = build_agent_children(agent, body, kbs, defaults)
            except ValidationError as exc:  # e.g. a name too long for the runtime config
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                refused.append(
                    Problem(
                        "ChildRejected",
                        f"the workers' configuration cannot be built: {where}: {err['msg']}",
                    )
                )
        suites = self.tests.suites(ns, name)
        prev_status: Obj = body.get("status") or {}
        tested: TestsObserved | None = None
        history: list[Obj] = prev_status.get("revisions") or []
        rollout: RolloutPlan | None = None
        if children is not None:
            digest = children.config_hash
            # A canary keeps the stable pool as it is and adds the canary's (reconcile_rollout).
            rollout = await self.rollouts.plan(
                agent,
                body,
                children.objects,
                agent_egress(agent, body, kbs, read, self.egress, [s for s, _ in suites]),
                digest,
                tested=bool(suites),
            )
            # The egress policies first: new worker and test pods start restricted.
            applied, refused = await self.store.ensure_all(rollout.egress)
            wrote |= applied
            no_autoscaler = autoscaler_unavailable(
                agent.spec.scaling.autoscaler, children.autoscaler_missing
            )
            # Before the wanted one is applied: two autoscalers must never drive the Deployment
            # at once (and KEDA's webhook refuses a ScaledObject while an HPA targets it).
            wrote |= await self._remove_other_autoscaler(agent, body)
            wrote |= await self._remove_unwanted_web(agent, body)
            wrote |= await self._remove_unwanted_recordings(agent, body)
            # Independent objects: applied concurrently (the pod waits for its ConfigMap anyway).
            applied, problems = await self.store.ensure_all(rollout.objects)
            wrote |= applied
            refused += problems
            removed, problems = await self.rollouts.remove(body, rollout.remove, "no canary runs")
            wrote |= removed
            refused += problems
            image = agent.spec.image or defaults.image
            if suites and not waiting:  # an index still building would fail the cases
                tested = await self.tests.reconcile(agent, body, suites, kbs, image, digest)
                wrote |= tested.wrote
            elif not suites:
                wrote |= await self.tests.remove(agent, body)
            kept = revisions(
                history,
                digest,
                body["metadata"].get("generation", 0),
                tested.summary if tested else None,
                agent.spec.revision_history_limit,
            )
            try:
                wrote |= await self._keep_revisions(agent, body, history, kept)
                history = kept
            except ApiError as exc:  # it serves without: said, and tried again (history kept)
                refused.append(
                    Problem(
                        "RevisionNotKept",
                        f"the spec of configuration {digest} cannot be kept for rollback"
                        f" (ControllerRevision): {exc.message}",
                    )
                )
        telephony: TelephonyObservation | None = None
        sip = agent.spec.telephony.sip if agent.spec.telephony else None
        if sip is not None:
            body, telephony, sip_wrote = await self.sip.reconcile(agent, body, sip)
            wrote |= sip_wrote
        elif contract.SIP_FINALIZER in (body["metadata"].get("finalizers") or []):
            # Telephony was removed from the spec: its LiveKit objects go, then the finalizer.
            problem = await self.sip.remove(agent, body)
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
                resources_fit=resources_fit(agent, worker_resources(agent)),
                waiting_calls=self.waiting_calls(ns, name),
                notices=[
                    *agent_notices(agent),
                    *refused,
                    *([conflict] if conflict else []),
                    *([rollout.problem] if rollout and rollout.problem else []),
                ],
                # Held (blocked, or an index building): the last result stays till the next run.
                tests=tested.summary if tested else prev_status.get("tests") if suites else None,
                revisions=history,
                # Held (blocked): the rollout stays where it was.
                rollout=rollout.status if rollout else prev_status.get("rollout"),
            )
        )
        old = body.get("status") or {}
        wrote |= await self.store.write_status(contract.VOICE_AGENT_KIND, body, status)
        self.events.transitions(body, old, status, "AgentReady")
        if blocking or refused or (telephony is not None and telephony.problem is not None):
            # Secrets, LiveKit and others' objects are not watched: look again, later and later.
            return self.queue.backoff(key), "blocked"
        self.queue.reset(key)
        waits = [self.sip_poll_seconds if telephony is not None else None]
        waits.append(tested.again if tested else None)
        waits.append(rollout.again if rollout else None)
        again = min((w for w in waits if w is not None), default=None)
        return again, "changed" if wrote else "unchanged"

    async def _keep_revisions(
        self, agent: VoiceAgent, body: Obj, before: list[Obj], after: list[Obj]
    ) -> bool:
        """A new revision's spec is kept in a ControllerRevision (created once: its data is
        immutable, and a configuration applied again reuses it); one no revision names any more
        is deleted. Only when status.revisions changes: no request otherwise."""
        meta = body["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta.get("uid")
        wrote = False
        newest = after[0]["configHash"]
        if not before or before[0].get("configHash") != newest:
            revision = build_revision(agent, body, body["spec"], newest, meta.get("generation", 0))
            key = (REVISION_KIND, ns, revision["metadata"]["name"])
            if await self.store.api.get(*key) is None:  # not watched: looked up
                await self.store.api.apply(revision)
                wrote = True
        kept = {r["configHash"] for r in after}
        for digest in {r.get("configHash") for r in before} - kept - {None}:
            live = await self.store.api.get(REVISION_KIND, ns, revision_name(name, str(digest)))
            wrote |= await self.store.delete_owned(
                REVISION_KIND, live, uid, "beyond spec.revisionHistoryLimit"
            )
        return wrote

    async def _remove_other_autoscaler(self, agent: VoiceAgent, body: Obj) -> bool:
        """Deletes the agent's autoscaler of the kind spec.scaling.autoscaler does not name, if
        this VoiceAgent owns it (never a namesake of someone else's). KEDA's own HPA
        (``keda-hpa-<name>``) is KEDA's child: it goes with the ScaledObject."""
        meta = body["metadata"]
        ns, name = meta["namespace"], child_name(meta["name"])
        wanted = AUTOSCALER_KINDS[agent.spec.scaling.autoscaler]
        why = f"spec.scaling.autoscaler is {agent.spec.scaling.autoscaler}"
        wrote = False
        for kind in AUTOSCALER_KINDS.values():
            # The cache is complete for HPAs (listed) and holds every ScaledObject the operator
            # applied or watched; one it missed is queued here by its watch event.
            if kind != wanted:
                wrote |= await self.store.delete_owned(
                    kind, self.cache.get(kind, ns, name), meta.get("uid"), why
                )
        return wrote

    async def _remove_unwanted_recordings(self, agent: VoiceAgent, body: Obj) -> bool:
        """Once spec.recording is removed: the expiry CronJob and its policy, if this VoiceAgent
        owns them (the recordings stay in the bucket, the team's to keep or delete). The
        CronJob goes last: it shows there is something left to remove."""
        meta = body["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        cronjob = self.cache.get("CronJob", ns, expiry_name(agent))
        if agent.spec.recording is not None or cronjob is None or not owned_by(cronjob, uid):
            return False
        why = "no longer in spec.recording"
        wrote = await self.store.delete_owned_named(
            "NetworkPolicy", ns, recordings_policy_name(agent), uid, why
        )
        return await self.store.delete_owned("CronJob", cronjob, uid, why) or wrote

    async def _remove_unwanted_web(self, agent: VoiceAgent, body: Obj) -> bool:
        """Deletes the web gateway's objects the spec no longer asks for: all of them once
        spec.web is removed, the Ingress once spec.web.ingress is. Only objects this VoiceAgent
        owns. The Deployment goes last: it is what shows there is something left to remove, so
        a removal cut short resumes on the next pass."""
        meta = body["metadata"]
        ns, uid, web = meta["namespace"], meta.get("uid"), agent.spec.web
        unwanted: list[tuple[str, str]] = []
        if web is None or web.ingress is None:
            unwanted.append(("Ingress", web_name(agent)))
        deployment = self.cache.get("Deployment", ns, web_name(agent))
        if web is None and deployment is not None and owned_by(deployment, uid):
            unwanted += [
                ("NetworkPolicy", web_policy_name(agent)),
                ("Service", web_name(agent)),
                ("Deployment", web_name(agent)),
            ]
        wrote = False
        for kind, name in unwanted:
            wrote |= await self.store.delete_owned_named(
                kind, ns, name, uid, "no longer in spec.web"
            )
        return wrote
