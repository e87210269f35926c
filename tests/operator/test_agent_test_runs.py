"""An agent's conversation tests in its reconcile, against the in-memory API (fake_api.py): the
run's Job and suites ConfigMap, the report read from the pod's termination message into each
VoiceAgentTest's status and the agent's status.tests, Tested and revisions, Events, and the
cleanup of superseded runs. The Job running for real, on a node, is tests/system's."""

from __future__ import annotations

from typing import Any

from kubevox_api import contract
from kubevox_api.voiceagenttest import ReportedCase, TestReport, VoiceAgentTest, suites_hash

from tests.support.objects import agent_test, knowledge_base, secrets, voice_agent

from .fake_api import Harness, Obj, harness

NS = "team"
KEY = ("VoiceAgent", NS, "va")


def cond(status: Obj, type_: str) -> tuple[str, str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"], c["message"]


def status(h: Harness, kind: str = "VoiceAgent", name: str = "va") -> Obj:
    live = h.api.live(kind, NS, name)
    assert live is not None
    return dict(live.get("status") or {})


def runs_of(h: Harness) -> list[Obj]:
    return [
        o
        for (kind, ns, _), o in h.api.objects.items()
        if kind == "Job" and o["metadata"]["labels"].get(contract.LABEL_COMPONENT) == "test"
    ]


async def reconcile(h: Harness) -> tuple[float | None, str]:
    """One reconcile, with the objects it wrote delivered back by the watch."""
    for kind, ns, name in list(h.api.objects):
        h.cache.put(kind, h.api.live(kind, ns, name) or {})
    return await h.agents.reconcile(KEY)


def start(*suites: Obj, **spec: Any) -> Harness:
    h = harness()
    for s in secrets(NS):
        h.api.seed(s)
    h.api.seed(voice_agent("va", NS, **spec))
    for suite in suites or (agent_test("smoke", NS),):
        h.api.seed(suite)
    return h


def finish(h: Harness, job: Obj, message: str, *, exit_code: int) -> None:
    """What the Job controller and the kubelet do when the test pod ends: the pod's termination
    message and exit code, the Job's Complete or Failed condition."""
    name, uid = job["metadata"]["name"], job["metadata"]["uid"]
    h.api.seed(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-x1",
                "namespace": NS,
                "labels": {"job-name": name, **job["spec"]["template"]["metadata"]["labels"]},
                "ownerReferences": [{"kind": "Job", "uid": uid, "controller": True}],
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": contract.TEST_CONTAINER,
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "message": message,
                                "finishedAt": "2026-12-01T06:00:00Z",
                            }
                        },
                    }
                ]
            },
        }
    )
    live = h.api.objects[("Job", NS, name)]
    kind = "Complete" if exit_code == 0 else "Failed"
    live["status"] = {"conditions": [{"type": kind, "status": "True", "reason": kind}]}


def report(h: Harness, *cases: tuple[str, str, bool, list[str]], config: str | None = None) -> str:
    """The test command's report for the agent's current run."""
    job = runs_of(h)[0]
    run_config = config or status(h)["configHash"]
    suites = {s["metadata"]["name"] for s in h.cache.items(contract.VOICE_AGENT_TEST_KIND, NS)}
    tested = suites_hash(
        [
            VoiceAgentTest.model_validate(h.api.live(contract.VOICE_AGENT_TEST_KIND, NS, s))
            for s in sorted(suites)
        ]
    )
    assert job["metadata"]["labels"][contract.LABEL_TEST_RUN]
    return TestReport(
        config_hash=run_config,
        suites_hash=tested,
        cases=[ReportedCase(suite=s, name=n, passed=p, reasons=r) for s, n, p, r in cases],
    ).termination_message()


async def test_a_suite_gets_a_job_for_the_agents_configuration_and_its_result_in_status() -> None:
    h = start()
    assert await reconcile(h) == (None, "changed")
    [job] = runs_of(h)
    st = status(h)
    assert job["metadata"]["labels"][contract.LABEL_VOICE_AGENT] == "va"
    assert h.api.live("ConfigMap", NS, "va-tests") is not None
    assert st["tests"]["phase"] == "Running"
    assert st["tests"]["configHash"] == st["configHash"]
    assert cond(st, "Tested")[:2] == ("Unknown", "TestsRunning")
    assert status(h, contract.VOICE_AGENT_TEST_KIND, "smoke")["phase"] == "Running"
    [revision] = st["revisions"]
    assert (revision["configHash"], revision["tests"]) == (st["configHash"], "Running")

    finish(h, job, report(h, ("smoke", "hours", True, [])), exit_code=0)
    await reconcile(h)
    st = status(h)
    assert st["tests"] | {"completionTime": None} == {
        "phase": "Passed",
        "configHash": st["configHash"],
        "passed": 1,
        "failed": 0,
        "failing": [],
        "jobName": job["metadata"]["name"],
        "completionTime": None,
    }
    assert cond(st, "Tested")[:2] == ("True", "TestsPassed")
    assert st["revisions"][0]["tests"] == "Passed"
    suite = status(h, contract.VOICE_AGENT_TEST_KIND, "smoke")
    assert (suite["phase"], suite["passed"], suite["failed"]) == ("Passed", 1, 0)
    assert suite["cases"] == [{"name": "hours", "passed": True, "reasons": []}]
    assert cond(suite, "Passed")[:2] == ("True", "TestsPassed")
    assert ("Normal", "TestsPassed") in await h.event_reasons()

    # Nothing more to do for this configuration: no write, no new Job.
    h.api.writes.clear()
    assert await reconcile(h) == (None, "unchanged")
    assert h.api.writes == []


async def test_a_failed_case_is_reported_with_its_reasons_and_a_warning() -> None:
    h = start()
    await reconcile(h)
    [job] = runs_of(h)
    why = "turn 1: the reply does not contain '8'"
    finish(h, job, report(h, ("smoke", "hours", False, [why])), exit_code=1)
    await reconcile(h)
    st = status(h)
    assert (st["tests"]["phase"], st["tests"]["failing"]) == ("Failed", ["smoke/hours"])
    assert cond(st, "Tested")[:2] == ("False", "TestsFailed")
    assert "smoke/hours" in cond(st, "Tested")[2]
    suite = status(h, contract.VOICE_AGENT_TEST_KIND, "smoke")
    assert suite["cases"] == [{"name": "hours", "passed": False, "reasons": [why]}]
    assert st["revisions"][0]["tests"] == "Failed"
    assert ("Warning", "TestsFailed") in await h.event_reasons()


async def test_a_new_configuration_is_a_new_run_and_a_new_revision() -> None:
    h = start()
    await reconcile(h)
    [first] = runs_of(h)
    finish(h, first, report(h, ("smoke", "hours", True, [])), exit_code=0)
    await reconcile(h)
    old_hash = status(h)["configHash"]

    agent = h.api.objects[KEY]
    agent["spec"]["instructions"] = "You are a terse clinic assistant."
    agent["metadata"]["generation"] = 2
    await reconcile(h)
    [second] = runs_of(h)
    st = status(h)
    assert second["metadata"]["name"] != first["metadata"]["name"]  # the first one deleted
    assert st["configHash"] != old_hash
    assert st["tests"]["phase"] == "Running"
    assert [(r["configHash"], r["generation"], r.get("tests")) for r in st["revisions"]] == [
        (st["configHash"], 2, "Running"),
        (old_hash, 1, "Passed"),
    ]


async def test_an_edited_suite_runs_again_on_the_same_configuration() -> None:
    h = start()
    await reconcile(h)
    [first] = runs_of(h)
    suite = h.api.objects[(contract.VOICE_AGENT_TEST_KIND, NS, "smoke")]
    suite["spec"]["cases"][0]["turns"][0]["expect"]["contains"] = ["8 am"]
    await reconcile(h)
    [second] = runs_of(h)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert len(status(h)["revisions"]) == 1  # the configuration did not change


async def test_a_report_of_another_configuration_is_not_taken_for_this_one() -> None:
    h = start()
    await reconcile(h)
    [job] = runs_of(h)
    finish(h, job, report(h, ("smoke", "hours", True, []), config="0" * 16), exit_code=0)
    await reconcile(h)
    st = status(h)
    assert st["tests"]["phase"] == "Error"
    assert "tested configuration 0000000000000000" in st["tests"]["message"]
    assert cond(st, "Tested")[:2] == ("False", "TestsError")


async def test_a_run_that_crashed_says_why_from_its_log() -> None:
    h = start()
    await reconcile(h)
    [job] = runs_of(h)
    finish(h, job, "spec.llm.credentials: KUBEVOX_LLM_API_KEY is not set", exit_code=2)
    await reconcile(h)
    st = status(h)
    assert st["tests"]["phase"] == "Error"
    assert "KUBEVOX_LLM_API_KEY is not set" in st["tests"]["message"]
    assert ("Warning", "TestsError") in await h.event_reasons()


async def test_an_ended_job_whose_report_is_not_seen_yet_is_looked_at_again_soon() -> None:
    h = start()
    await reconcile(h)
    [job] = runs_of(h)
    h.api.objects[("Job", NS, job["metadata"]["name"])]["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}]
    }
    again, _ = await reconcile(h)
    assert again is not None
    assert again <= 1.0
    assert status(h)["tests"]["phase"] == "Running"


async def test_removing_the_last_suite_removes_its_run_and_the_tests_status() -> None:
    h = start()
    await reconcile(h)
    assert runs_of(h)
    del h.api.objects[(contract.VOICE_AGENT_TEST_KIND, NS, "smoke")]
    h.cache.delete(contract.VOICE_AGENT_TEST_KIND, NS, "smoke")
    await reconcile(h)
    st = status(h)
    assert runs_of(h) == []
    assert h.api.live("ConfigMap", NS, "va-tests") is None
    assert "tests" not in st
    assert all(c["type"] != "Tested" for c in st["conditions"])
    assert len(st["revisions"]) == 1  # the configuration's history stays


async def test_a_suite_of_another_agent_runs_nothing_for_this_one() -> None:
    h = start(agent_test("theirs", NS, "other"))
    await reconcile(h)
    assert runs_of(h) == []
    assert "tests" not in status(h)


async def test_revisions_keep_the_last_n_each_with_its_spec() -> None:
    h = start(revisionHistoryLimit=2)
    for generation, words in enumerate(("terse", "kind", "brief", "kind"), start=1):
        agent = h.api.objects[KEY]
        agent["spec"]["instructions"] = f"You are a {words} clinic assistant."
        agent["metadata"]["generation"] = generation
        await reconcile(h)
    st = status(h)
    assert [r["generation"] for r in st["revisions"]] == [4, 3]
    kept = {
        o["metadata"]["labels"][contract.LABEL_CONFIG_HASH]: o
        for (kind, _, _), o in h.api.objects.items()
        if kind == "ControllerRevision"
    }
    assert set(kept) == {r["configHash"] for r in st["revisions"]}  # "terse" deleted
    # "kind" came back at generation 4: its spec is the one first applied, at generation 2.
    again = kept[st["revisions"][0]["configHash"]]
    assert again["revision"] == 2
    assert again["data"]["spec"]["instructions"] == "You are a kind clinic assistant."
    assert again["metadata"]["ownerReferences"][0]["uid"] == h.api.objects[KEY]["metadata"]["uid"]


async def test_the_suites_wait_for_the_agents_knowledge_bases_to_be_ready() -> None:
    h = start(knowledgeBases=[{"name": "kb"}])
    h.api.seed(knowledge_base("kb", NS))
    await reconcile(h)
    assert runs_of(h) == []  # the cases would ask an index still being built
    assert "tests" not in status(h)

    h.api.objects[("KnowledgeBase", NS, "kb")]["status"] = {
        "phase": "Ready",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Indexed",
                "lastTransitionTime": "2026-12-01T06:00:00Z",
            }
        ],
    }
    await reconcile(h)
    assert len(runs_of(h)) == 1
    assert status(h)["tests"]["phase"] == "Running"


async def test_a_revision_that_cannot_be_kept_is_said_and_tried_again() -> None:
    h = start()
    h.api.reject["ControllerRevision"] = 'controllerrevisions.apps "va-1" is forbidden'
    again, outcome = await reconcile(h)
    st = status(h)
    assert outcome == "blocked"
    assert again is not None
    assert cond(st, "Degraded")[:2] == ("True", "RevisionNotKept")
    assert "is forbidden" in cond(st, "Degraded")[2]
    assert "revisions" not in st  # not recorded: the next reconcile tries again
    del h.api.reject["ControllerRevision"]
    await reconcile(h)
    st = status(h)
    assert len(st["revisions"]) == 1
    assert cond(st, "Degraded")[:2] == ("False", "AsExpected")


async def test_a_run_the_api_server_refuses_is_an_error_not_a_run_forever() -> None:
    h = start()
    h.api.reject["Job"] = 'Job.batch "va-test-1" is invalid: spec.template: quota exceeded'
    await reconcile(h)
    st = status(h)
    assert st["tests"]["phase"] == "Error"
    assert "quota exceeded" in st["tests"]["message"]
    assert cond(st, "Tested")[:2] == ("False", "TestsError")


async def test_a_suite_naming_no_agent_says_so_until_the_agent_exists() -> None:
    h = harness()
    for s in secrets(NS):
        h.api.seed(s)
    h.api.seed(agent_test("smoke", NS))
    assert await reconcile(h) == (None, "deleted")  # the key the suite's event queued
    suite = status(h, contract.VOICE_AGENT_TEST_KIND, "smoke")
    assert suite["phase"] == "Pending"
    assert cond(suite, "Passed") == (
        "Unknown",
        "AgentNotFound",
        f"VoiceAgent {NS}/va not found (spec.agentRef)",
    )
    h.api.seed(voice_agent("va", NS))
    await reconcile(h)
    suite = status(h, contract.VOICE_AGENT_TEST_KIND, "smoke")
    assert suite["phase"] == "Running"
    assert "is running the suites" in suite["message"]
