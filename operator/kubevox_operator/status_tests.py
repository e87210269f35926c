"""Status of an agent's conversation tests, computed from its test Job and the report in its
pod's termination message; and the agent's revisions. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubevox_api import contract
from kubevox_api.voiceagenttest import ReportedCase, TestReport
from pydantic import ValidationError

from .builders.agent_test import TestRun
from .status import TEST_VERDICTS, condition, now_iso
from .status_knowledge import job_outcome, terminated

Obj = dict[str, Any]
FAILING_LISTED = 16
"""Failed cases named in the agent's status.tests (each suite's status has them all)."""


@dataclass
class TestOutcome:
    """Where one run stands."""

    __test__ = False  # not a pytest test class

    phase: str
    """Running, Passed, Failed or Error (TestPhase)."""
    cases: list[ReportedCase] = field(default_factory=list)
    unlisted: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per suite, (passed, failed) cases the report only counted (it must fit in 4 KiB)."""
    message: str = ""
    completion_time: str | None = None
    settling: bool = False
    """The Job has ended but its pod's report is not in the cache yet: look again shortly."""


def _report(pods: list[Obj]) -> tuple[TestReport | None, str, str | None]:
    """The newest terminated test pod's report, else the end of its log; and when it ended."""
    newest: tuple[str, str] | None = None
    for pod in pods:
        state = terminated(pod, contract.TEST_CONTAINER)
        if state and state.get("message"):
            when = str(state.get("finishedAt", ""))
            if newest is None or when >= newest[0]:
                newest = (when, str(state["message"]))
    if newest is None:
        return None, "", None
    try:
        return TestReport.model_validate_json(newest[1]), "", newest[0] or None
    except (ValidationError, ValueError):
        return None, newest[1][-2000:], newest[0] or None


def test_outcome(run: TestRun, job: Obj | None, pods: list[Obj]) -> TestOutcome:
    state, job_message = job_outcome(job)
    if state in ("Missing", "Running"):
        return TestOutcome("Running", message=f"Job {run.job_name} is running the suites")
    report, log_tail, ended = _report(pods)
    if report is None and not log_tail and not job_message:
        return TestOutcome("Running", message="the Job ended; reading its report", settling=True)
    if report is None:
        why = log_tail or job_message
        return TestOutcome("Error", message=f"the run left no report: {why}", completion_time=ended)
    if (report.config_hash, report.suites_hash) != (run.config_hash, run.suites_hash):
        # The agent's ConfigMap changed between the Job's creation and its pod's start.
        return TestOutcome(
            "Error",
            message=f"the run tested configuration {report.config_hash}, not {run.config_hash}:"
            " a newer configuration is tested by its own run",
            completion_time=ended,
        )
    unlisted = {
        s: (report.passed_unlisted.get(s, 0), report.failed_unlisted.get(s, 0))
        for s in {*report.passed_unlisted, *report.failed_unlisted}
    }
    failed = any(not c.passed for c in report.cases) or any(f for _, f in unlisted.values())
    if state == "Failed" and not failed:
        return TestOutcome("Error", message=f"the Job failed: {job_message}", completion_time=ended)
    return TestOutcome(
        "Failed" if failed else "Passed", report.cases, unlisted, completion_time=ended
    )


def _counts(outcome: TestOutcome, suite: str | None = None) -> tuple[int, int]:
    cases = [c for c in outcome.cases if suite is None or c.suite == suite]
    passed = sum(c.passed for c in cases)
    failed = len(cases) - passed
    for name, (p, f) in outcome.unlisted.items():
        if suite is None or name == suite:
            passed, failed = passed + p, failed + f
    return passed, failed


def _passed_message(outcome: TestOutcome, passed: int, failed: int) -> str:
    if outcome.phase == "Failed":
        return f"{failed} of {passed + failed} cases failed"
    if outcome.phase == "Passed":
        return f"all {passed} cases passed"
    return outcome.message  # Running, Error: what the run says


def suite_status(body: Obj, run: TestRun, outcome: TestOutcome) -> Obj:
    """A VoiceAgentTest's status (VoiceAgentTestStatus) for this run."""
    name = body["metadata"]["name"]
    generation = body["metadata"].get("generation", 0)
    passed, failed = _counts(outcome, name)
    finished = outcome.phase != "Running"
    prev = (body.get("status") or {}).get("conditions", []) or []
    return {
        "observedGeneration": generation,
        "phase": outcome.phase,
        "configHash": run.config_hash,
        "passed": passed if finished else None,
        "failed": failed if finished else None,
        "cases": [
            {"name": c.name, "passed": c.passed, "reasons": c.reasons}
            for c in outcome.cases
            if c.suite == name
        ],
        "message": outcome.message or None,
        "jobName": run.job_name,
        "completionTime": outcome.completion_time,
        "conditions": [
            condition(
                prev,
                "Passed",
                *TEST_VERDICTS[outcome.phase],
                _passed_message(outcome, passed, failed),
                generation,
            )
        ],
    }


def orphan_status(body: Obj, agent: str) -> Obj:
    """A VoiceAgentTest whose agent does not exist (a typo in agentRef, or the agent deleted):
    Pending, saying so; the results of an agent that was are gone with it."""
    generation = body["metadata"].get("generation", 0)
    prev = (body.get("status") or {}).get("conditions", []) or []
    why = f"VoiceAgent {body['metadata']['namespace']}/{agent} not found (spec.agentRef)"
    return {
        "observedGeneration": generation,
        "phase": "Pending",
        "message": why,
        "conditions": [condition(prev, "Passed", None, "AgentNotFound", why, generation)],
    }


def tests_summary(run: TestRun, outcome: TestOutcome) -> Obj:
    """The agent's status.tests (TestsSummary)."""
    passed, failed = _counts(outcome)
    finished = outcome.phase != "Running"
    return {
        "phase": outcome.phase,
        "configHash": run.config_hash,
        "passed": passed if finished else None,
        "failed": failed if finished else None,
        "failing": [f"{c.suite}/{c.name}" for c in outcome.cases if not c.passed][:FAILING_LISTED],
        "message": outcome.message if outcome.phase == "Error" else None,
        "jobName": run.job_name,
        "completionTime": outcome.completion_time,
    }


def revisions(
    previous: list[Obj], digest: str, generation: int, tests: Obj | None, limit: int
) -> list[Obj]:
    """status.revisions, newest first: a configuration applied now that is not the newest is a
    new revision; the newest carries its tests' phase once they ran on it."""
    out = [dict(r) for r in previous]
    if not out or out[0].get("configHash") != digest:
        out.insert(0, {"configHash": digest, "generation": generation, "appliedTime": now_iso()})
    if tests is not None and tests.get("configHash") == digest:
        out[0]["tests"] = tests["phase"]
    return out[:limit]
