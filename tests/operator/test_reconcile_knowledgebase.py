"""The KnowledgeBase reconciler against an in-memory API (fake_api.py): an ingestion Job per
content, its result in the status, sources that are missing, a Job that is someone else's.
No cluster."""

from __future__ import annotations

import json

from kubevox_api import contract

from tests.support.objects import faq, ingest_result, knowledge_base, secrets

from .fake_api import Harness, Obj, harness

NS = "team"
KEY = ("KnowledgeBase", NS, "kb")


def cond(status: Obj, type_: str) -> tuple[str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"]


def status(h: Harness) -> Obj:
    live = h.api.live("KnowledgeBase", NS, "kb")
    assert live is not None
    return dict(live.get("status") or {})


def with_kb(h: Harness, *, source: bool = True) -> None:
    for s in secrets(NS):
        h.api.seed(s)
    if source:
        h.api.seed(faq(NS))
    h.api.seed(knowledge_base("kb", NS))
    h.watch("KnowledgeBase", NS, "kb")


def finish(h: Harness, job_name: str, result: Obj, outcome: str = "Complete") -> None:
    """The Job controller's part: a pod that ran the ingest command, the Job's condition."""
    job = h.api.objects[("Job", NS, job_name)]
    job["status"] = {"conditions": [{"type": outcome, "status": "True"}]}
    h.watch("Job", NS, job_name)
    h.api.seed(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-abcde",
                "namespace": NS,
                "labels": {"job-name": job_name},
                "ownerReferences": [
                    {"kind": "Job", "uid": job["metadata"]["uid"], "controller": True}
                ],
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": contract.INGEST_CONTAINER,
                        "state": {
                            "terminated": {
                                "reason": "Completed" if outcome == "Complete" else "Error",
                                "message": json.dumps(result),
                                "finishedAt": "2026-01-01T00:00:01Z",
                            }
                        },
                    }
                ]
            },
        }
    )
    h.watch("Pod", NS, f"{job_name}-abcde")
    h.watch("KnowledgeBase", NS, "kb")


async def test_new_content_gets_an_ingestion_job_once() -> None:
    h = harness()
    with_kb(h)
    assert await h.knowledge.reconcile(KEY) == (None, "changed")
    kinds = sorted(k for _, k, _ in h.api.written("apply"))
    assert kinds == ["ConfigMap", "Job"]
    st = status(h)
    assert st["phase"] == "Indexing"
    assert cond(st, "Indexing") == ("True", "JobRunning")
    assert cond(st, "Ready") == ("False", "Indexing")
    job_name = st["jobName"]
    assert h.api.live("Job", NS, job_name) is not None

    h.api.writes.clear()
    h.watch("KnowledgeBase", NS, "kb")
    assert await h.knowledge.reconcile(KEY) == (None, "unchanged")
    assert h.api.writes == []


async def test_a_completed_job_makes_the_index_ready_with_its_counts() -> None:
    h = harness()
    with_kb(h)
    await h.knowledge.reconcile(KEY)
    job_name = status(h)["jobName"]
    finish(h, job_name, ingest_result(documents=2, chunks=5))
    assert (await h.knowledge.reconcile(KEY))[1] == "changed"
    st = status(h)
    assert st["phase"] == "Ready"
    assert cond(st, "Ready") == ("True", "Indexed")
    assert cond(st, "Failed") == ("False", "NoFailure")
    assert (st["documents"], st["chunks"]) == (2, 5)
    assert st["contentHash"]
    assert ("Normal", "Indexed") in await h.event_reasons()

    # Indexed and current: nothing more to run or write.
    h.api.writes.clear()
    h.watch("KnowledgeBase", NS, "kb")
    assert await h.knowledge.reconcile(KEY) == (None, "unchanged")
    assert h.api.writes == []


async def test_a_failed_ingestion_is_reported_with_its_reason() -> None:
    h = harness()
    with_kb(h)
    await h.knowledge.reconcile(KEY)
    finish(h, status(h)["jobName"], ingest_result(ok=False), outcome="Failed")
    await h.knowledge.reconcile(KEY)
    st = status(h)
    assert st["phase"] == "Failed"
    assert cond(st, "Failed") == ("True", "IngestionFailed")
    assert st["sourceErrors"] == [{"source": "faq", "message": "cannot parse"}]
    assert ("Warning", "IngestionFailed") in await h.event_reasons()


async def test_a_missing_source_runs_nothing_and_backs_off() -> None:
    h = harness()
    with_kb(h, source=False)
    again, outcome = await h.knowledge.reconcile(KEY)
    assert (again, outcome) == (1.0, "blocked")
    assert h.api.written("apply") == []
    st = status(h)
    assert st["phase"] == "Pending"
    assert cond(st, "Ready") == ("False", "SourceMissing")
    assert cond(st, "Indexing") == ("False", "Blocked")


async def test_a_job_namesake_that_is_not_ours_is_reported() -> None:
    h = harness()
    with_kb(h)
    await h.knowledge.reconcile(KEY)
    job_name = status(h)["jobName"]
    # Someone else's Job under the name the next run would take.
    h.api.objects.pop(("Job", NS, job_name))
    h.cache.delete("Job", NS, job_name)
    h.api.seed(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job_name, "namespace": NS}}
    )
    h.api.objects[KEY]["status"] = {}
    h.watch("KnowledgeBase", NS, "kb")
    assert (await h.knowledge.reconcile(KEY))[1] == "blocked"
    st = status(h)
    assert cond(st, "Failed") == ("True", "ChildConflict")
    assert "is not this object's" in next(
        c["message"] for c in st["conditions"] if c["type"] == "Failed"
    )


async def test_a_superseded_job_is_deleted_once_the_new_run_ends() -> None:
    h = harness()
    with_kb(h)
    await h.knowledge.reconcile(KEY)
    first = status(h)["jobName"]
    finish(h, first, ingest_result())
    await h.knowledge.reconcile(KEY)
    h.api.objects[("ConfigMap", NS, "faq")]["data"] = {"faq.md": "Q: New? A: Yes."}
    h.watch("Job", NS, first)
    h.watch("KnowledgeBase", NS, "kb")
    await h.knowledge.reconcile(KEY)
    second = status(h)["jobName"]
    assert second != first
    finish(h, second, ingest_result(documents=3))
    await h.knowledge.reconcile(KEY)
    assert ("delete", "Job", first) in h.api.writes
    assert status(h)["documents"] == 3


async def test_a_deleted_knowledge_base_is_forgotten() -> None:
    h = harness()
    assert await h.knowledge.reconcile(KEY) == (None, "deleted")
