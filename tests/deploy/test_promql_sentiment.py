"""The dashboard's caller-sentiment row, evaluated by Prometheus' own engine (promtool) on the
series a worker exports: the shares of negative and positive turns, the median score and the
calls turning negative, per agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.utils import floatToGoString

from agent_runtime import metrics
from tests.support.dashboard import DASHBOARD, filled
from tests.support.tools import promtool_test

# Caller turns scored in 10 minutes (counters scraped every 15 s: 41 samples): support had 10
# negative (-0.6), 20 neutral (0.0) and 10 positive (+0.6) turns; billing 20 negative ones.
TURNS = {"support": {-0.6: 10, 0.0: 20, 0.6: 10}, "billing": {-0.6: 20}}
TURNED_NEGATIVE = {"support": 0, "billing": 5}
STEPS = 40


def _queries(title: str) -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in dash["panels"] if p["title"] == title]
    return [filled(str(t["expr"])) for t in panel["targets"]]


def _series(agent: str, turns: dict[float, int]) -> list[dict[str, str]]:
    labels = f'namespace="clinic",pod="{agent}-0",agent="{agent}",config_hash="h"'
    bounds = [*metrics.SENTIMENT_BUCKETS, float("inf")]
    out = []
    for bound in bounds:  # cumulative, as the worker's histogram exports its buckets
        below = sum(n for score, n in turns.items() if score <= bound)
        le = floatToGoString(bound)
        series = f'{metrics.CALLER_SENTIMENT}_bucket{{{labels},le="{le}"}}'
        out.append({"series": series, "values": f"0+{below / STEPS}x{STEPS}"})
    total = sum(turns.values())
    out.append(
        {
            "series": f"{metrics.CALLER_SENTIMENT}_count{{{labels}}}",
            "values": f"0+{total / STEPS}x{STEPS}",
        }
    )
    falls = TURNED_NEGATIVE[agent]
    out.append(
        {
            "series": f"{metrics.CALLS_TURNED_NEGATIVE}{{{labels}}}",
            "values": f"0+{falls / STEPS}x{STEPS}",
        }
    )
    return out


def test_the_sentiment_row_reads_each_agents_turns(tmp_path: Path) -> None:
    negative, positive = _queries("Caller turns negative and positive (share)")
    (median,) = _queries("Median caller sentiment")
    (turned,) = _queries("Calls turning negative per minute")
    rules = {
        "dash:negative": negative,
        "dash:positive": positive,
        "dash:median": median,
        "dash:turned": turned,
    }

    def expect(record: str, values: dict[str, float]) -> dict[str, Any]:
        def sample(agent: str, value: float) -> dict[str, Any]:
            return {"labels": f'{{namespace="clinic",agent="{agent}"}}', "value": value}

        return {
            "expr": f"round({record}, 1e-6)",  # round() drops the name, keeps the labels
            "eval_time": "10m",
            "exp_samples": [sample(a, v) for a, v in values.items()],
        }

    promtool_test(
        tmp_path,
        rules,
        [
            {
                "interval": "15s",
                "input_series": [s for a, t in TURNS.items() for s in _series(a, t)],
                "promql_expr_test": [
                    expect("dash:negative", {"support": 0.25, "billing": 1.0}),
                    expect("dash:positive", {"support": 0.25, "billing": 0.0}),
                    # support's middle turns are neutral (-0.05..0.05: interpolated to 0);
                    # billing's in the bucket -0.75..-0.5, half-way.
                    expect("dash:median", {"support": 0.0, "billing": -0.625}),
                    expect("dash:turned", {"support": 0.0, "billing": 0.5}),
                ],
            }
        ],
    )
