"""knowledge_status, case by case: the phase of a KnowledgeBase and the reason and message of
each of its conditions for each situation it tells apart. Pure."""

from __future__ import annotations

import json

import pytest
from kubevox_api import contract
from kubevox_operator.status import Problem
from kubevox_operator.status_knowledge import KnowledgeObservation, knowledge_status

from .status_rows import Cond, Obj, conditions


def job(outcome: str | None) -> Obj:
    conds = [{"type": outcome, "status": "True", "message": "BackoffLimitExceeded"}]
    return {"metadata": {"name": "kb-1"}, "status": {"conditions": conds if outcome else []}}


def pod(result: Obj | None = None, reason: str = "Completed", message: str | None = None) -> Obj:
    text = message if message is not None else json.dumps(result)
    state = {
        "terminated": {"reason": reason, "message": text, "finishedAt": "2026-01-02T00:00:00Z"}
    }
    return {
        "metadata": {"name": "kb-1-x"},
        "status": {"containerStatuses": [{"name": contract.INGEST_CONTAINER, "state": state}]},
    }


OK = {
    "ok": True,
    "message": "indexed 2 documents",
    "documents": 2,
    "chunks": 5,
    "lastIndexedTime": "2026-01-02T00:00:00Z",
    "activeIndex": "kb-v2",
    "sourceErrors": [],
    "languages": [{"language": "fr", "documents": 1}, {"language": "en", "documents": 1}],
}
BAD_MESSAGE = "index kb belongs to team/other"
BAD: Obj = {
    "ok": False,
    "reason": "IndexOwnedByOther",
    "message": BAD_MESSAGE,
    "sourceErrors": [{"source": "faq", "message": "x"}],
}
INDEXED = {
    "lastIndexedTime": "2026-01-01T00:00:00Z",
    "contentHash": "old",
    "documents": 1,
    "languages": [{"language": "en", "documents": 1}],
}
SOURCE = Problem("SourceMissing", "ConfigMap team/faq (source faq) not found")
OOM = (
    "ingestion Job kb-1 ran out of memory and was not retried: the sources are too large for "
    "one run; lower spec.limits.maxSourceBytes or split the sources over several KnowledgeBases"
)
NO_FAILURE = ("False", "NoFailure", "")

KB_CASES: list[tuple[str, Obj, str, dict[str, Cond]]] = [
    (
        "blocked-first-index",
        {"blocking": [SOURCE]},
        "Pending",
        {
            "Ready": ("False", "SourceMissing", SOURCE.message),
            "Indexing": ("False", "Blocked", SOURCE.message),
            "Failed": ("True", "SourceMissing", SOURCE.message),
        },
    ),
    (
        "blocked-previous-index-serves",
        {"blocking": [SOURCE], "previous": INDEXED},
        "Pending",
        {
            "Ready": ("True", "PreviousIndexServing", SOURCE.message),
            "Failed": ("True", "SourceMissing", SOURCE.message),
        },
    ),
    (
        "current-job-gone",
        {"previous": {**INDEXED, "contentHash": "h"}, "job": None},
        "Ready",
        {
            "Ready": ("True", "Indexed", "index is current"),
            "Indexing": ("False", "JobComplete", "the index is current"),
            "Failed": NO_FAILURE,
        },
    ),
    (
        "first-run",
        {"job": job(None)},
        "Indexing",
        {
            "Ready": ("False", "Indexing", "the first index is being built"),
            "Indexing": ("True", "JobRunning", "ingestion Job kb-1 is running"),
            "Failed": NO_FAILURE,
        },
    ),
    (
        "rerun-previous-serves",
        {"job": job(None), "previous": INDEXED},
        "Indexing",
        {
            "Ready": (
                "True",
                "PreviousIndexServing",
                "the previous index serves until the new one is built",
            ),
            "Indexing": ("True", "JobRunning", "ingestion Job kb-1 is running"),
        },
    ),
    (
        "completed",
        {"job": job("Complete"), "pods": [pod(OK)]},
        "Ready",
        {
            "Ready": ("True", "Indexed", "indexed 2 documents"),
            "Indexing": ("False", "JobComplete", "ingestion Job kb-1 completed"),
            "Failed": NO_FAILURE,
        },
    ),
    (
        "completed-without-result",
        {"job": job("Complete")},
        "Failed",
        {
            "Ready": (
                "False",
                "ResultMissing",
                "the Job completed without a result in its termination message",
            ),
            "Indexing": ("False", "JobComplete", "ingestion Job kb-1 completed"),
        },
    ),
    (
        "completed-without-result-previous-serves",
        {"job": job("Complete"), "previous": INDEXED},
        "Ready",
        {
            "Ready": (
                "True",
                "ResultMissing",
                "the Job completed without a result in its termination message",
            ),
        },
    ),
    (
        "failed-with-a-reason",
        {"job": job("Failed"), "pods": [pod(BAD, reason="Error")]},
        "Failed",
        {
            "Ready": ("False", "IndexOwnedByOther", BAD_MESSAGE),
            "Indexing": ("False", "JobFailed", "ingestion Job kb-1 failed"),
            "Failed": ("True", "IndexOwnedByOther", BAD_MESSAGE),
        },
    ),
    (
        "completed-but-not-ok",
        {"job": job("Complete"), "pods": [pod({"ok": False, "message": "bad"})]},
        "Failed",
        {
            "Ready": ("False", "IngestionFailed", "bad"),
            "Failed": ("True", "IngestionFailed", "bad"),
        },
    ),
    (
        "failed-without-result",
        {"job": job("Failed")},
        "Failed",
        {"Failed": ("True", "IngestionFailed", "BackoffLimitExceeded")},
    ),
    (
        "failed-previous-serves",
        {"job": job("Failed"), "pods": [pod(BAD, reason="Error")], "previous": INDEXED},
        "Failed",
        {
            "Ready": (
                "True",
                "PreviousIndexServing",
                f"latest ingestion failed ({BAD_MESSAGE}); the previous index serves",
            ),
            "Failed": ("True", "IndexOwnedByOther", BAD_MESSAGE),
        },
    ),
    (
        "out-of-memory",
        {"job": job("Failed"), "pods": [pod(reason="OOMKilled", message="...log tail")]},
        "Failed",
        {
            "Ready": ("False", "IngestionOutOfMemory", OOM),
            "Failed": ("True", "IngestionOutOfMemory", OOM),
        },
    ),
]


@pytest.mark.parametrize(
    ("observed", "phase", "expected"),
    [c[1:] for c in KB_CASES],
    ids=[c[0] for c in KB_CASES],
)
def test_knowledge_status(observed: Obj, phase: str, expected: dict[str, Cond]) -> None:
    fields: Obj = {"previous": {}, "content_hash": "h", "job_name": "kb-1", **observed}
    status = knowledge_status(KnowledgeObservation(generation=2, index_name="kb", **fields))
    assert status["phase"] == phase
    got = conditions(status)
    assert {t: got[t] for t in expected} == expected
    assert status["observedGeneration"] == 2
    assert status["indexName"] == "kb"


def test_a_completed_run_records_its_result_and_content() -> None:
    status = knowledge_status(
        KnowledgeObservation(2, INDEXED, "kb", "new", "kb-1", job=job("Complete"), pods=[pod(OK)])
    )
    assert (status["documents"], status["chunks"], status["activeIndex"]) == (2, 5, "kb-v2")
    assert status["lastIndexedTime"] == "2026-01-02T00:00:00Z"
    assert status["contentHash"] == "new"
    assert status["sourceErrors"] == []
    assert status["languages"] == OK["languages"]


def test_a_failed_run_keeps_the_live_index_and_reports_source_errors() -> None:
    status = knowledge_status(
        KnowledgeObservation(
            2, INDEXED, "kb", "new", "kb-1", job=job("Failed"), pods=[pod(BAD, reason="Error")]
        )
    )
    assert (status["documents"], status["contentHash"]) == (1, "old")
    assert status["sourceErrors"] == BAD["sourceErrors"]
    assert status["languages"] == INDEXED["languages"]  # the live index's, still
