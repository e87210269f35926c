"""A call's caller sentiment, end to end on the node: the turns the worker pod scored (its call
record's ``sentiment``) reach Prometheus (``kubevox_caller_sentiment``), and the dashboard's
median panel has a value for the agent. The series start at 0 in the pod's job processes, so
Prometheus' rate() counts even the pod's first scored turn."""

from __future__ import annotations

from typing import Any

from tests.support.dashboard import panel_query

from .conftest import System, wait_until


def check_sentiment(system: System, namespace: str, record: dict[str, Any]) -> None:
    """The call ``record`` is the sample agent's only call so far."""
    scored = record["sentiment"]["turns"]
    assert scored, record["sentiment"]  # the caller's question, scored after the answer
    assert all(-1.0 <= s <= 1.0 for s in scored), scored
    ours = f'namespace="{namespace}",agent="offline"'

    def counted() -> float | None:
        value = system.prometheus(f"sum(kubevox_caller_sentiment_count{{{ours}}})")
        return value if value == len(scored) else None

    wait_until(f"{len(scored)} scored caller turns in Prometheus", counted, 120)
    median = panel_query(
        "Median caller sentiment", window="10m", namespace=namespace, agent="offline"
    )

    def panel() -> tuple[float] | None:  # a neutral caller's median is 0: a value, not "none"
        value = system.prometheus(median)
        return (value,) if value is not None else None

    (value,) = wait_until("the dashboard's median sentiment", panel, 120)
    assert -1.0 <= value <= 1.0, (median, value)
