"""A canary's calls, read from Prometheus for its configuration alone, and judged.

The workers label their call metrics with ``config_hash`` (agent_runtime/metrics.py), so the
canary is measured apart from the stable pool whatever scrapes the pods (a ServiceMonitor, or a
pod-discovery job like manifests/dev). The window is the current step: the seconds since the
canary took its share.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubevox_api import contract
from kubevox_api.voiceagent_rollout import CanaryAnalysis

from .builders.autoscaling import promql_selector
from .rollout import Verdict

log = logging.getLogger("kubevox.controller")

TIMEOUT_SECONDS = 10.0


def canary_queries(namespace: str, agent: str, config_hash: str, window: float) -> dict[str, str]:
    """PromQL of each measurement over the last ``window`` seconds (an empty result: no call)."""
    labels = {"namespace": namespace, "agent": agent, "config_hash": config_hash}
    sel = promql_selector(labels)
    w = f"[{max(math.ceil(window), 1)}s]"

    def calls(outcome: str | None = None) -> str:
        matchers = promql_selector({**labels, "outcome": outcome}) if outcome else sel
        return f"sum(increase({contract.CALLS_TOTAL_METRIC}{matchers}{w}))"

    return {
        "calls": calls(),
        "errorRate": f"{calls('error')} / {calls()}",
        "transferRate": f"{calls('transferred')} / {calls()}",
        "apologyRate": (
            f"sum(increase({contract.APOLOGIES_TOTAL_METRIC}{sel}{w}))"
            f" / sum(increase({contract.TURNS_TOTAL_METRIC}{sel}{w}))"
        ),
        "voiceToVoiceP95Seconds": (
            "histogram_quantile(0.95, sum by (le) "
            f"(increase({contract.VOICE_TO_VOICE_METRIC}_bucket{sel}{w})))"
        ),
    }


BOUNDS = (
    ("errorRate", "max_error_rate", "error rate"),
    ("apologyRate", "max_apology_rate", "apology rate"),
    ("voiceToVoiceP95Seconds", "max_voice_to_voice_p95_seconds", "voice-to-voice p95"),
    ("transferRate", "max_transfer_rate", "transfer rate"),
)


def judge(analysis: CanaryAnalysis, measured: dict[str, float | None]) -> Verdict:
    """The verdict on one step's measurements (``calls`` and the rates; None: no data, e.g. a
    rate of no turn at all)."""
    calls = round(measured.get("calls") or 0)
    shown = {"calls": calls} | {
        k: round(v, 4) for k, v in measured.items() if k != "calls" and v is not None
    }
    if calls < analysis.min_calls:
        return Verdict(
            "wait", f"{calls} of the {analysis.min_calls} calls needed to judge the step", shown
        )
    over = [
        f"{label} {measured[key]:.3g} > {bound:g}"
        f" (spec.rollout.canary.analysis.{CanaryAnalysis.model_fields[attr].alias})"
        for key, attr, label in BOUNDS
        if (bound := getattr(analysis, attr)) is not None
        and measured.get(key) is not None
        and measured[key] > bound
    ]
    if over:
        return Verdict("breach", "its calls: " + "; ".join(over), shown)
    return Verdict("pass", "", shown)


@dataclass
class CanaryMetrics:
    """Reads a canary's measurements from the operator's Prometheus ("" when it has none)."""

    url: str

    async def verdict(
        self, analysis: CanaryAnalysis, namespace: str, agent: str, config_hash: str, window: float
    ) -> Verdict:
        if not (analysis.bounded or analysis.min_calls):
            return Verdict("pass")
        if not self.url:
            return Verdict(
                "wait",
                "spec.rollout.canary.analysis needs Prometheus, and the operator has none"
                " (--prometheus-url, env KUBEVOX_PROMETHEUS_URL)",
            )
        measured: dict[str, float | None] = {}
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            ) as session:
                for key, query in canary_queries(namespace, agent, config_hash, window).items():
                    measured[key] = await _instant(session, self.url, query)
        except (aiohttp.ClientError, OSError, ValueError) as e:
            log.warning("Prometheus cannot be read", extra={"url": self.url, "error": repr(e)})
            return Verdict("wait", f"Prometheus at {self.url} cannot be read: {e!r}")
        return judge(analysis, measured)


async def _instant(session: aiohttp.ClientSession, url: str, query: str) -> float | None:
    """The value of an instant query with one series at most (None: none, or NaN)."""
    async with session.get(url.rstrip("/") + "/api/v1/query", params={"query": query}) as resp:
        body: Any = await resp.json(content_type=None)
    try:
        if body.get("status") != "success":
            raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
    except (AttributeError, KeyError, IndexError, TypeError) as e:  # not Prometheus' answer
        raise ValueError(f"not a Prometheus query result: {e!r}") from e
    return None if math.isnan(value) or math.isinf(value) else value
