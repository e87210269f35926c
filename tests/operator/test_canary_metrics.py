"""A canary's calls judged against ``spec.rollout.canary.analysis``
(kubevox_operator/canary_metrics.py): the verdict on given measurements, the PromQL evaluated by
Prometheus's own engine (promtool) on series of two configurations of one agent and of other
agents, and the whole reading against a small HTTP server speaking Prometheus's query API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubevox_api import contract
from kubevox_api.voiceagent_rollout import CanaryAnalysis
from kubevox_operator.canary_metrics import CanaryMetrics, canary_queries, judge

from tests.support.servers.base import LocalServer
from tests.support.tools import promtool_test

NS, AGENT, STABLE, CANARY = "clinic", "support", "aaa", "bbb"
WINDOW = 600.0


def test_judge_waits_for_enough_calls() -> None:
    """Fewer calls than minCalls: wait, saying how many of how many, whatever the rates."""
    v = judge(CanaryAnalysis(min_calls=20, max_error_rate=0.1), {"calls": 3.0, "errorRate": 0.9})
    assert v.state == "wait"
    assert "3 of the 20 calls" in v.message
    assert v.measurement == {"calls": 3, "errorRate": 0.9}


@pytest.mark.parametrize(
    ("attr", "key", "alias", "label"),
    [
        ("max_error_rate", "errorRate", "maxErrorRate", "error rate"),
        ("max_apology_rate", "apologyRate", "maxApologyRate", "apology rate"),
        (
            "max_voice_to_voice_p95_seconds",
            "voiceToVoiceP95Seconds",
            "maxVoiceToVoiceP95Seconds",
            "voice-to-voice p95",
        ),
        ("max_transfer_rate", "transferRate", "maxTransferRate", "transfer rate"),
    ],
)
def test_judge_names_each_bound_exceeded(attr: str, key: str, alias: str, label: str) -> None:
    """Each bound exceeded is a breach whose message names the metric, its value, the bound
    and the spec field; the measurement goes with the verdict. The bound itself passes."""
    analysis = CanaryAnalysis.model_validate({alias: 0.25, "minCalls": 10})
    measured: dict[str, float | None] = {"calls": 40.0, key: 0.5}
    v = judge(analysis, measured)
    assert v.state == "breach"
    assert f"{label} 0.5 > 0.25" in v.message
    assert f"spec.rollout.canary.analysis.{alias}" in v.message
    assert v.measurement == {"calls": 40, key: 0.5}
    assert judge(analysis, {"calls": 40.0, key: 0.25}).state == "pass"
    assert getattr(analysis, attr) == 0.25


def test_judge_names_every_breach_at_once() -> None:
    """Two bounds exceeded: both are named."""
    analysis = CanaryAnalysis(max_error_rate=0.1, max_transfer_rate=0.1)
    v = judge(analysis, {"calls": 10.0, "errorRate": 0.2, "transferRate": 0.3})
    assert v.state == "breach"
    assert "maxErrorRate" in v.message
    assert "maxTransferRate" in v.message


def test_judge_passes_within_bounds_and_without_data() -> None:
    """Rates within their bounds pass, and a rate with no data (None: no turn, no latency) is
    no breach; the measurement lists the values there are, rounded."""
    analysis = CanaryAnalysis(
        min_calls=10,
        max_error_rate=0.1,
        max_apology_rate=0.1,
        max_voice_to_voice_p95_seconds=1.5,
        max_transfer_rate=0.2,
    )
    measured: dict[str, float | None] = {
        "calls": 11.6,
        "errorRate": 0.0512345,
        "transferRate": 0.2,
        "apologyRate": None,
        "voiceToVoiceP95Seconds": None,
    }
    v = judge(analysis, measured)
    assert (v.state, v.message) == ("pass", "")
    assert v.measurement == {"calls": 12, "errorRate": 0.0512, "transferRate": 0.2}


def _counter(total: int) -> str:
    """A counter that appears at 1m (no sample at 0m) at 0 and reaches ``total`` at 10m. At
    eval time 10m over [600s] increase() extrapolates nothing: the counter's zero is its first
    sample and its last is at the window's end, so the sums below are exact."""
    return " ".join(["_", *(str(total * i // 9) for i in range(10))])


def _series(metric: str, total: int, **labels: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{body}}}", "values": _counter(total)}


CALLS, TURNS = contract.CALLS_TOTAL_METRIC, contract.TURNS_TOTAL_METRIC
APOLOGIES, BUCKET = contract.APOLOGIES_TOTAL_METRIC, contract.VOICE_TO_VOICE_METRIC + "_bucket"


def _pod(ns: str, agent: str, config: str, pod: str) -> Callable[..., dict[str, str]]:
    def series(metric: str, total: int, **labels: str) -> dict[str, str]:
        return _series(
            metric, total, namespace=ns, agent=agent, config_hash=config, pod=pod, **labels
        )

    return series


def _pod_series(
    pod: Callable[..., dict[str, str]],
    outcomes: dict[str, int],
    turns: int,
    apologies: int,
    buckets: dict[str, int],
) -> list[dict[str, str]]:
    return [
        *(pod(CALLS, n, outcome=outcome) for outcome, n in outcomes.items()),
        pod(TURNS, turns),
        pod(APOLOGIES, apologies),
        *(pod(BUCKET, n, le=le) for le, n in buckets.items()),
    ]


# The canary (two pods): 10 calls ended, 2 in error and 1 transferred; 20 turns, 5 apologies;
# voice-to-voice observations cumulative per bucket 2 (<=0.5s), 10 (<=1s), 20 (<=2s), 20.
CANARY_SERIES = [
    *_pod_series(
        _pod(NS, AGENT, CANARY, "support-canary-1"),
        {"completed": 4, "error": 2},
        12,
        5,
        {"0.5": 1, "1.0": 6, "2.0": 12, "+Inf": 12},
    ),
    *_pod_series(
        _pod(NS, AGENT, CANARY, "support-canary-2"),
        {"completed": 3, "transferred": 1},
        8,
        0,
        {"0.5": 1, "1.0": 4, "2.0": 8, "+Inf": 8},
    ),
]
# The stable configuration of the same agent: 30 calls all completed (its error counter exists
# at 0, no call was ever transferred), 60 turns of which 6 apologies, every turn under 0.5s.
# Other agents with the canary's hash (same agent name in another namespace, another agent in
# this one) that do badly: none of it may reach the canary's numbers.
OTHER_SERIES = [
    *_pod_series(
        _pod(NS, AGENT, STABLE, "support-1"),
        {"completed": 30, "error": 0},
        60,
        6,
        {"0.5": 60, "1.0": 60, "2.0": 60, "+Inf": 60},
    ),
    *_pod_series(
        _pod(NS, "billing", CANARY, "billing-1"),
        {"error": 50, "transferred": 50},
        100,
        100,
        {"0.5": 0, "1.0": 0, "2.0": 0, "+Inf": 100},
    ),
    *_pod_series(
        _pod("other", AGENT, CANARY, "support-x"),
        {"error": 9},
        9,
        9,
        {"0.5": 0, "1.0": 0, "2.0": 0, "+Inf": 9},
    ),
]


def _p95(cumulative: list[tuple[float, int]]) -> float:
    """histogram_quantile(0.95) of classic buckets as Prometheus computes it (promql/quantile.go,
    BucketQuantile) when the rank falls in a bucket with an upper bound: linear interpolation
    inside that bucket, in the same float operations."""
    rank = 0.95 * cumulative[-1][1]
    start, below = 0.0, 0
    for upper, count in cumulative:
        if count >= rank:
            return start + (upper - start) * ((rank - below) / (count - below))
        start, below = upper, count
    raise AssertionError("the rank is past the last finite bucket")


def _expect(record: str, value: float | None) -> dict[str, Any]:
    samples = [] if value is None else [{"labels": record, "value": value}]
    return {"expr": record, "eval_time": "10m", "exp_samples": samples}


def test_canary_queries_measure_one_configuration(tmp_path: Path) -> None:
    """Prometheus's engine (promtool test rules) on the canary's and the stable pool's series of
    one agent, and on other agents with the canary's hash: the canary's calls 10, errorRate 0.2,
    transferRate 0.1, apologyRate 0.25 and p95 interpolated in its (1s, 2s] bucket; the stable
    configuration's own queries give its numbers (no transfer at all: no data), so neither
    leaks into the other."""
    canary_p95 = _p95([(0.5, 2), (1.0, 10), (2.0, 20)])
    assert 1.85 < canary_p95 < 1.95  # rank 19 of 20: nine tenths into (1s, 2s]
    stable_p95 = _p95([(0.5, 60)])
    assert 0.45 < stable_p95 < 0.5
    expected: dict[str, dict[str, float | None]] = {
        CANARY: {
            "calls": 10,
            "errorRate": 0.2,
            "transferRate": 0.1,
            "apologyRate": 0.25,
            "voiceToVoiceP95Seconds": canary_p95,
        },
        STABLE: {
            "calls": 30,
            "errorRate": 0.0,
            "transferRate": None,
            "apologyRate": 0.1,
            "voiceToVoiceP95Seconds": stable_p95,
        },
    }
    rules: dict[str, str] = {}
    tests: list[dict[str, Any]] = []
    for config, values in expected.items():
        queries = canary_queries(NS, AGENT, config, WINDOW)
        assert set(queries) == set(values)
        assert all("[600s]" in q for q in queries.values())
        for key, query in queries.items():
            rules[f"config_{config}:{key}"] = query
            tests.append(_expect(f"config_{config}:{key}", values[key]))

    promtool_test(
        tmp_path,
        rules,
        [
            {
                "interval": "1m",
                "input_series": CANARY_SERIES + OTHER_SERIES,
                "promql_expr_test": tests,
            }
        ],
        interval="1m",
    )


async def test_without_prometheus_a_bounded_analysis_waits() -> None:
    """Bounds but no Prometheus URL: wait, naming the operator's flag."""
    v = await CanaryMetrics("").verdict(
        CanaryAnalysis(max_error_rate=0.1), NS, AGENT, CANARY, WINDOW
    )
    assert v.state == "wait"
    assert "--prometheus-url" in v.message


class _Prometheus(LocalServer):
    """/api/v1/query answering each query string from a table (a query not in it: no series),
    or one fixed response."""

    def __init__(
        self, values: dict[str, str] | None = None, fixed: web.Response | None = None
    ) -> None:
        super().__init__()
        self.values = values or {}
        self.fixed = fixed
        self.queries: list[str] = []
        self.app.router.add_get("/api/v1/query", self.query)

    async def query(self, request: web.Request) -> web.Response:
        q = request.query["query"]
        self.queries.append(q)
        if self.fixed is not None:
            return self.fixed
        result = (
            [{"metric": {}, "value": [1_700_000_000.0, self.values[q]]}] if q in self.values else []
        )
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )


async def test_no_bounds_and_no_minimum_pass_without_asking() -> None:
    """Nothing to check: pass, and Prometheus is not asked at all."""
    async with _Prometheus() as prom:
        v = await CanaryMetrics(prom.url).verdict(CanaryAnalysis(), NS, AGENT, CANARY, WINDOW)
    assert v.state == "pass"
    assert prom.queries == []
    v = await CanaryMetrics("").verdict(CanaryAnalysis(), NS, AGENT, CANARY, WINDOW)
    assert v.state == "pass"


async def test_prometheus_measurements_over_a_bound_breach() -> None:
    """Each of the five queries is asked for the canary's configuration; an error rate of 0.5
    over maxErrorRate 0.1 is a breach, and rates with no series (or NaN: no turn) are no data."""
    queries = canary_queries(NS, AGENT, CANARY, WINDOW)
    values = {queries["calls"]: "40", queries["errorRate"]: "0.5", queries["apologyRate"]: "NaN"}
    analysis = CanaryAnalysis(min_calls=10, max_error_rate=0.1, max_apology_rate=0.01)
    async with _Prometheus(values) as prom:
        v = await CanaryMetrics(prom.url + "/").verdict(analysis, NS, AGENT, CANARY, WINDOW)
    assert sorted(prom.queries) == sorted(queries.values())
    assert v.state == "breach"
    assert "maxErrorRate" in v.message
    assert "maxApologyRate" not in v.message
    assert v.measurement == {"calls": 40, "errorRate": 0.5}


async def test_prometheus_measurements_within_bounds_pass() -> None:
    """The same reading with a low error rate passes, carrying what was measured."""
    queries = canary_queries(NS, AGENT, CANARY, WINDOW)
    values = {queries["calls"]: "40", queries["errorRate"]: "0.05"}
    async with _Prometheus(values) as prom:
        v = await CanaryMetrics(prom.url).verdict(
            CanaryAnalysis(min_calls=10, max_error_rate=0.1), NS, AGENT, CANARY, WINDOW
        )
    assert (v.state, v.measurement) == ("pass", {"calls": 40, "errorRate": 0.05})


@pytest.mark.parametrize(
    "body",
    [
        ("text/plain", "upstream connect error"),
        ("application/json", json.dumps({"status": "error", "errorType": "bad_data"})),
        # Another service at that URL: JSON, but not a Prometheus query result.
        ("application/json", "[]"),
        ("application/json", json.dumps({"status": "success"})),
        ("application/json", json.dumps({"status": "success", "data": {"result": [{}]}})),
    ],
    ids=["garbage", "prometheus-error", "json-list", "no-data", "no-value"],
)
async def test_unreadable_prometheus_waits_naming_it(body: tuple[str, str]) -> None:
    """A 500 whose body is not Prometheus's answer, or Prometheus's own error: wait (the step is
    not judged on nothing), naming the URL."""
    content_type, text = body
    fixed = web.Response(status=500, text=text, content_type=content_type)
    async with _Prometheus(fixed=fixed) as prom:
        v = await CanaryMetrics(prom.url).verdict(
            CanaryAnalysis(max_error_rate=0.1), NS, AGENT, CANARY, WINDOW
        )
    assert v.state == "wait"
    assert f"Prometheus at {prom.url} cannot be read" in v.message
    assert len(prom.queries) == 1


async def test_unreachable_prometheus_waits_naming_it() -> None:
    """Nothing listens at the URL: wait, naming it."""
    async with _Prometheus() as prom:
        url = prom.url
    v = await CanaryMetrics(url).verdict(
        CanaryAnalysis(max_error_rate=0.1), NS, AGENT, CANARY, WINDOW
    )
    assert v.state == "wait"
    assert url in v.message
