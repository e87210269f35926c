"""What the status table tests share: a status's conditions as (status, reason, message) rows,
so one case states every condition it expects in one literal."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
Cond = tuple[str, str, str]  # status, reason, message


def conditions(status: Obj) -> dict[str, Cond]:
    """Each condition of ``status`` by its type."""
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
