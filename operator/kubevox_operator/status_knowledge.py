"""Status of KnowledgeBases, computed from the ingestion Job and its pods. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubevox_api import contract

from .status import Problem, condition, conditions_by_type, now_iso

Obj = dict[str, Any]


def terminated(pod: Obj, container: str = contract.INGEST_CONTAINER) -> Obj | None:
    """The container's last termination (its exit code, reason and message), if it ended."""
    for cs in pod.get("status", {}).get("containerStatuses", []) or []:
        if cs.get("name") == container:
            state = cs.get("state", {}).get("terminated") or cs.get("lastState", {}).get(
                "terminated"
            )
            if state:
                return dict(state)
    return None


def out_of_memory(pods: list[Obj]) -> bool:
    """Whether the kernel killed an ingestion container for exceeding its memory limit."""
    return any((terminated(p) or {}).get("reason") == "OOMKilled" for p in pods)


def job_result(pods: list[Obj]) -> Obj | None:
    """The ingest command's result JSON, from the newest terminated pod's termination message."""
    best: tuple[str, Obj] | None = None
    for pod in pods:
        state = terminated(pod)
        if not state or not state.get("message"):
            continue
        try:
            parsed = json.loads(state["message"])
        except ValueError:
            parsed = {"ok": False, "message": str(state["message"])[-2000:]}
        if not isinstance(parsed, dict):
            continue
        when = str(state.get("finishedAt", ""))
        if best is None or when >= best[0]:
            best = (when, parsed)
    return best[1] if best else None


def job_outcome(job: Obj | None) -> tuple[str, str]:
    """("Running" | "Complete" | "Failed" | "Missing", message)."""
    if job is None:
        return "Missing", ""
    conds = conditions_by_type(job)
    for type_ in ("Complete", "Failed"):
        c = conds.get(type_)
        if c and c.get("status") == "True":
            return type_, str(c.get("message") or c.get("reason") or "")
    return "Running", ""


LIVE_FIELDS = (
    "documents",
    "chunks",
    "lastIndexedTime",
    "activeIndex",
    "durationSeconds",
    "languages",
)
"""What the status says of the live index: kept until a run replaces it."""


@dataclass
class KnowledgeObservation:
    generation: int
    previous: Obj
    index_name: str
    content_hash: str | None
    job_name: str | None
    blocking: list[Problem] = field(default_factory=list)
    job: Obj | None = None
    pods: list[Obj] = field(default_factory=list)


def knowledge_status(o: KnowledgeObservation) -> Obj:
    prev_conds = o.previous.get("conditions", []) or []
    # The live index (counts, time) stays until a run replaces it.
    live = {k: o.previous[k] for k in LIVE_FIELDS if o.previous.get(k) is not None}
    has_index = "lastIndexedTime" in live
    out: Obj = {
        "observedGeneration": o.generation,
        "indexName": o.index_name,
        "jobName": o.job_name,
        **live,
        "contentHash": o.previous.get("contentHash"),
        "sourceErrors": o.previous.get("sourceErrors", []),
    }
    if o.blocking:
        msg = "; ".join(p.message for p in o.blocking)
        phase, indexing, failed = (
            "Pending",
            (False, "Blocked", msg),
            (True, o.blocking[0].reason, msg),
        )
        ready = (has_index, "PreviousIndexServing" if has_index else o.blocking[0].reason, msg)
        out["jobName"] = o.previous.get("jobName")
    else:
        outcome, job_msg = job_outcome(o.job)
        result = job_result(o.pods) if outcome in ("Complete", "Failed") else None
        current = o.content_hash is not None and o.previous.get("contentHash") == o.content_hash
        if current and outcome in ("Missing", "Complete") and result is None:
            # Indexed and unchanged; its Job or pod may be gone by now, the index is not.
            phase = "Ready"
            indexing = (False, "JobComplete", "the index is current")
            failed = (False, "NoFailure", "")
            ready = (True, "Indexed", "index is current")
        elif outcome in ("Running", "Missing"):
            phase = "Indexing"
            indexing = (True, "JobRunning", f"ingestion Job {o.job_name} is running")
            failed = (False, "NoFailure", "")
            ready = (
                has_index,
                "PreviousIndexServing" if has_index else "Indexing",
                "the previous index serves until the new one is built"
                if has_index
                else "the first index is being built",
            )
        elif outcome == "Complete" and (result is None or result.get("ok", True)):
            phase = "Ready"
            indexing = (False, "JobComplete", f"ingestion Job {o.job_name} completed")
            failed = (False, "NoFailure", "")
            res = result or {}
            if result is None:
                ready = (
                    has_index,
                    "ResultMissing",
                    "the Job completed without a result in its termination message",
                )
                phase = "Failed" if not has_index else "Ready"
            else:
                ready = (True, "Indexed", res.get("message") or "index is current")
                for k in LIVE_FIELDS:
                    if res.get(k) is not None:
                        out[k] = res[k]
                out["lastIndexedTime"] = (
                    res.get("lastIndexedTime") or out.get("lastIndexedTime") or now_iso()
                )
                out["contentHash"] = o.content_hash
                out["sourceErrors"] = res.get("sourceErrors", [])
        else:
            res = result or {}
            msg = str(res.get("message") or job_msg or "the ingestion Job failed")
            # The ingest command may name the cause (IndexOwnedByOther), else a generic one.
            reason = str(res.get("reason") or "IngestionFailed")
            if out_of_memory(o.pods):
                # The termination message is then the log's tail, not a result: say what happened.
                res, reason = {}, "IngestionOutOfMemory"
                msg = (
                    f"ingestion Job {o.job_name} ran out of memory and was not retried: the "
                    "sources are too large for one run; lower spec.limits.maxSourceBytes or split "
                    "the sources over several KnowledgeBases"
                )
            phase = "Failed"
            indexing = (False, "JobFailed", f"ingestion Job {o.job_name} failed")
            failed = (True, reason, msg)
            ready = (
                has_index,
                "PreviousIndexServing" if has_index else reason,
                f"latest ingestion failed ({msg}); the previous index serves" if has_index else msg,
            )
            out["sourceErrors"] = res.get("sourceErrors", out["sourceErrors"])
    out["phase"] = phase
    out["conditions"] = [
        condition(prev_conds, "Ready", *ready, o.generation),
        condition(prev_conds, "Indexing", *indexing, o.generation),
        condition(prev_conds, "Failed", *failed, o.generation),
    ]
    return out
