"""An agent's conversation tests on the cluster: for each configuration the operator applies, a
Job holds the conversations of the VoiceAgentTests naming the agent (builders/agent_test.py);
its report becomes each suite's status and the agent's status.tests (status_tests.py). A run
whose configuration or suites are superseded is deleted: only the current pair is tested."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kubevox_api import KnowledgeBase, VoiceAgent, contract
from kubevox_api.voiceagenttest import VoiceAgentTest
from pydantic import ValidationError

from .builders.agent_test import build_test_run, is_test_job, tests_config_map_name
from .builders.network import test_policy_name
from .events import Events
from .reconcile_knowledgebase import trusted_job_pods
from .status import tested_condition
from .status_tests import (
    TestOutcome,
    orphan_status,
    suite_status,
    test_outcome,
    tests_summary,
)
from .store import Store

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")
SETTLE_SECONDS = 1.0
"""A Job that ended before its pod's report reached the cache is looked at again this soon."""


@dataclass
class TestsObserved:
    """What the agent's reconcile takes from its tests' run."""

    summary: Obj
    """status.tests."""
    wrote: bool
    again: float | None
    """Look again this soon (a report still on its way), else None."""


class AgentTests:
    def __init__(self, store: Store, events: Events) -> None:
        self.store = store
        self.cache = store.cache
        self.events = events

    def suites(self, ns: str, agent: str) -> list[tuple[VoiceAgentTest, Obj]]:
        """The valid VoiceAgentTests naming the agent (admission refuses invalid ones; one
        stored before a rule it breaks is left out), by name."""
        out = []
        for body in self.cache.items(contract.VOICE_AGENT_TEST_KIND, ns):
            if (body.get("spec") or {}).get("agentRef") != agent:
                continue
            if body["metadata"].get("deletionTimestamp"):
                continue
            try:
                out.append((VoiceAgentTest.model_validate(body), body))
            except ValidationError as exc:
                log.warning(
                    "VoiceAgentTest %s/%s is not valid: %s", ns, body["metadata"]["name"], exc
                )
        return sorted(out, key=lambda s: s[1]["metadata"]["name"])

    def _jobs(self, ns: str, agent: str) -> list[Obj]:
        return [
            j
            for j in self.cache.with_label("Job", ns, contract.LABEL_VOICE_AGENT, agent)
            if is_test_job(j)
        ]

    async def orphaned(self, ns: str, agent: str) -> None:
        """The agent does not exist: each suite naming it says so (Pending, AgentNotFound)."""
        for _, body in self.suites(ns, agent):
            await self.store.write_status(
                contract.VOICE_AGENT_TEST_KIND, body, orphan_status(body, agent)
            )

    async def remove(self, agent: VoiceAgent, body: Obj) -> bool:
        """No suite names the agent any more: its test Jobs, suites ConfigMap and egress
        policy go (only those it owns)."""
        meta = body["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        why = "no VoiceAgentTest names the agent"
        wrote = False
        for job in self._jobs(ns, meta["name"]):
            wrote |= await self.store.delete_owned("Job", job, uid, why)
        config_map = self.cache.get("ConfigMap", ns, tests_config_map_name(agent))
        wrote |= await self.store.delete_owned("ConfigMap", config_map, uid, why)
        if wrote or config_map is not None:  # not watched: looked up only while tests went
            policy = await self.store.api.get("NetworkPolicy", ns, test_policy_name(agent))
            wrote |= await self.store.delete_owned("NetworkPolicy", policy, uid, why)
        return wrote

    async def reconcile(
        self,
        agent: VoiceAgent,
        body: Obj,
        suites: list[tuple[VoiceAgentTest, Obj]],
        knowledge_bases: dict[str, KnowledgeBase],
        image: str,
        digest: str,
    ) -> TestsObserved:
        """Runs the suites on configuration ``digest`` (once), and reports where the run is."""
        meta = body["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        run = build_test_run(agent, body, [s for s, _ in suites], knowledge_bases, image, digest)
        wrote, problems = await self.store.ensure_all(run.objects)
        for old in self._jobs(ns, meta["name"]):
            if (old["metadata"].get("labels") or {}).get(contract.LABEL_TEST_RUN) != run.run:
                wrote |= await self.store.delete_owned(
                    "Job", old, uid, f"superseded by test run {run.run}"
                )
        job = self.cache.get("Job", ns, run.job_name)
        pods = trusted_job_pods(self.cache.with_label("Pod", ns, "job-name", run.job_name), job)
        outcome = test_outcome(run, job, pods)
        if problems:  # a namesake Job, or one the API server refused: it will never report
            outcome = TestOutcome("Error", message="; ".join(p.message for p in problems))
        for _, suite_body in suites:
            wrote |= await self.store.write_status(
                contract.VOICE_AGENT_TEST_KIND, suite_body, suite_status(suite_body, run, outcome)
            )
        summary = tests_summary(run, outcome)
        self._announce(body, summary)
        return TestsObserved(summary, wrote, SETTLE_SECONDS if outcome.settling else None)

    def _announce(self, body: Obj, summary: Obj) -> None:
        """An Event when a configuration's tests end (once: the status remembers)."""
        before = (body.get("status") or {}).get("tests") or {}
        phase = summary["phase"]
        same = (before.get("configHash"), before.get("phase")) == (summary["configHash"], phase)
        if not same and phase != "Running":
            c = tested_condition([], summary, 0)
            kind = "Normal" if c["status"] == "True" else "Warning"
            self.events.event(body, kind, c["reason"], c["message"])
