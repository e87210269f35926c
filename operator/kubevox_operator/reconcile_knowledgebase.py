"""The KnowledgeBase reconciler: read the sources, run an ingestion Job for content not yet
indexed (or due again), write the status that changed."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubevox_api import KnowledgeBase, contract
from kubevox_api.knowledgebase import stored_knowledge_base
from pydantic import ValidationError

from .builders import OperatorDefaults, build_ingest_plan, content_hash
from .builders.knowledge import parse_duration, run_id
from .builders.network import EgressSettings, knowledge_egress
from .events import Events
from .invalid_spec import report_invalid_spec
from .kube import ApiError
from .secret_reader import Secrets, secret_problem
from .status import Problem
from .status_knowledge import KnowledgeObservation, job_outcome, knowledge_status
from .store import ChildProblem, Store, owned_by
from .workqueue import Key, WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")


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


class KnowledgeBaseReconciler:
    def __init__(
        self,
        store: Store,
        secrets: Secrets,
        events: Events,
        queue: WorkQueue,
        defaults: Callable[[], OperatorDefaults],
        *,
        egress: EgressSettings | None,
    ) -> None:
        self.store = store
        self.cache = store.cache
        self.secrets = secrets
        self.events = events
        self.queue = queue
        self.defaults = defaults
        self.egress = egress

    async def reconcile(self, key: Key) -> tuple[float | None, str]:
        """Returns (seconds after which to look again or None, outcome for the metrics)."""
        _, ns, name = key
        body = self.cache.get(contract.KNOWLEDGE_BASE_KIND, ns, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.queue.forget(key)
            return None, "deleted"
        try:
            return await self._reconcile(key, body)
        except ApiError as exc:
            if exc.status == 403 and "being terminated" in exc.message:
                return None, "deleted"
            raise

    async def _sources(
        self, kb: KnowledgeBase, ns: str
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], list[Problem]]:
        cms: dict[str, dict[str, str]] = {}
        secrets: dict[str, dict[str, str]] = {}
        problems: list[Problem] = []
        for src in kb.spec.sources:
            if src.config_map is not None:
                sel = src.config_map
                cm = await self.store.api.get("ConfigMap", ns, sel.name)
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
                secret = await self.secrets.get(ns, src.secret.name)
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
        read = await self.secrets.read(ns, refs)
        for ref in refs:
            problem = secret_problem(read[ref.name], ns, ref)
            if problem:
                problems.append(problem)
        return cms, secrets, problems

    async def _reconcile(self, key: Key, body: Obj) -> tuple[float | None, str]:
        _, ns, name = key
        try:
            kb, note = stored_knowledge_base(body)
        except ValidationError as exc:
            await report_invalid_spec(
                self.store, self.events, contract.KNOWLEDGE_BASE_KIND, body, exc
            )
            return None, "invalid"
        prev: Obj = body.get("status") or {}
        if note and prev.get("observedGeneration") != body["metadata"].get("generation"):
            log.warning("KnowledgeBase %s/%s: %s", ns, name, note)
            self.events.event(body, "Warning", "RefreshIntervalRaised", note)  # once per gen.
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
                defaults = self.defaults()
                plan = build_ingest_plan(
                    kb, body, digest, run, defaults.image, defaults.ingest_allowed_cidrs
                )
                job_name = plan.job["metadata"]["name"]
                try:
                    redis = await self.secrets.get(ns, kb.spec.store.redis_url_secret_ref.name)
                    for policy in knowledge_egress(kb, body, redis, self.egress):
                        wrote |= await self.store.ensure(policy)  # before the Job's pods start
                    wrote |= await self.store.ensure(plan.config_map)
                    job = self.cache.get("Job", ns, job_name) or await self.store.api.get(
                        "Job", ns, job_name
                    )
                    if job is None:
                        wrote |= await self.store.ensure(plan.job)
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
        wrote |= await self.store.write_status(contract.KNOWLEDGE_BASE_KIND, body, status)
        self.events.transitions(body, prev, status, "Indexed")
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
                await self.store.api.delete("Job", ns, name)
