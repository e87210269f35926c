"""An object the API server stored but the models refuse: one written before a rule kubevox added
since (admission checks writes, and etcd keeps what it had), or with the CRD's validation
bypassed. Nothing is applied for it, what runs stays, and its status and an Event say why."""

from __future__ import annotations

import logging
from typing import Any

from kubevox_api.base import field_errors
from pydantic import ValidationError

from .events import Events
from .status import condition, failure_condition
from .store import Store

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")

REASON = "InvalidSpec"


def invalid_spec_message(err: ValidationError) -> str:
    """Every refused field, named as kubectl names it."""
    problems = "; ".join(f"{where}: {message}" for where, message in field_errors(err))
    return f"the spec is not valid for this version of kubevox, fix it and apply again: {problems}"


def invalid_spec_status(kind: str, body: Obj, message: str) -> Obj:
    """The previous status with Ready False and the kind's failure condition (Degraded for a
    VoiceAgent, Failed for a KnowledgeBase) True, both for ``InvalidSpec``; the rest, which
    describes what still runs, is kept."""
    previous: Obj = body.get("status") or {}
    generation = body["metadata"].get("generation", 0)
    old = previous.get("conditions") or []
    bad = failure_condition(kind)
    mine = {
        "Ready": condition(old, "Ready", False, REASON, message, generation),
        bad: condition(old, bad, True, REASON, message, generation),
    }
    kept = [c for c in old if c.get("type") not in mine]
    return {**previous, "observedGeneration": generation, "conditions": [*mine.values(), *kept]}


async def report_invalid_spec(
    store: Store, events: Events, kind: str, body: Obj, err: ValidationError
) -> None:
    meta = body["metadata"]
    message = invalid_spec_message(err)
    log.warning("%s %s/%s: %s", kind, meta["namespace"], meta["name"], message)
    status = invalid_spec_status(kind, body, message)
    await store.write_status(kind, body, status)
    events.transitions(body, body.get("status") or {}, status, "")  # one Warning per new reason
