"""The analysis of each call after it ends (``spec.analysis``): a summary, declared data fields
and a verdict against a rubric, delivered as ``call.analyzed`` (see analyst.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from kubevox_api import AgentRuntimeConfig

from .. import call_events
from ..call_events import Delivery
from .analyst import ANALYSIS_CONSUMER, AnalysisStep, CallAnalyst, analysis_model

__all__ = ["ANALYSIS_CONSUMER", "AnalysisStep", "CallAnalyst", "build_delivery"]


def build_delivery(
    config: AgentRuntimeConfig, env: Mapping[str, str] = os.environ, *, consumer: str
) -> Delivery | None:
    """The worker's delivery of its agent's outbox (call_events.build_delivery), with the
    analysis as one more step when the agent declares it."""
    analysis = config.spec.analysis
    steps = []
    if analysis is not None and config.spec.call_events is not None:
        analyst = CallAnalyst(analysis, analysis_model(config, env))
        publisher = call_events.from_config(config, env)  # its own client, closed with the step
        assert publisher is not None
        steps.append(AnalysisStep(analyst, publisher))
    return call_events.build_delivery(config, env, consumer, steps)
