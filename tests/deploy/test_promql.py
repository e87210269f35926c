"""The PromQL kubevox ships, evaluated by Prometheus's own engine (promtool, built from the
Prometheus Go module): the prometheus-adapter rule gives each worker pod its active calls, the
query the operator writes into KEDA ScaledObjects counts only its agent's pods that are not
terminating, and every dashboard query parses and names only metrics the runtime or the
operator export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from kubevox_api.contract import ACTIVE_CALLS_METRIC
from kubevox_api.pricing import UNIT_PRICE_METRIC, USAGE_METRIC
from kubevox_operator import metrics as operator_metrics
from kubevox_operator.builders.autoscaling import calls_query
from kubevox_operator.unit_prices import UnitPriceCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from agent_runtime import metrics as runtime_metrics
from tests.support.dashboard import DASHBOARD, filled, panel_query
from tests.support.tools import MANIFESTS, promtool, promtool_test, run

ADAPTER_VALUES = MANIFESTS / "monitoring" / "prometheus-adapter-values.yaml"


def _adapter_query(matchers: str, group_by: str) -> str:
    """The adapter's metricsQuery, templated the way prometheus-adapter does for a Pods metric
    request (<<.Series>>, <<.LabelMatchers>>, <<.GroupBy>>)."""
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    series = re.match(r"^(\w+)\{", rule["seriesQuery"])
    assert series
    assert series.group(1) == ACTIVE_CALLS_METRIC
    return str(
        rule["metricsQuery"]
        .replace("<<.Series>>", series.group(1))
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", group_by)
    )


# Three worker pods of VoiceAgent "support" (support-c is terminating, draining its last calls)
# and one of another agent in the same namespace; labels as a ServiceMonitor scrape sets them.
SERIES = [
    {
        "series": 'kubevox_active_calls{namespace="clinic",pod="support-a",agent="support",'
        'exported_namespace="clinic",job="support-metrics"}',
        "values": "3x20",
    },
    {
        "series": 'kubevox_active_calls{namespace="clinic",pod="support-b",agent="support",'
        'exported_namespace="clinic",job="support-metrics"}',
        "values": "1x20",
    },
    {
        "series": 'kubevox_active_calls{namespace="clinic",pod="support-c",agent="support",'
        'exported_namespace="clinic",job="support-metrics"}',
        "values": "2x20",
    },
    {
        "series": 'kubevox_active_calls{namespace="clinic",pod="billing-x",agent="billing",'
        'exported_namespace="clinic",job="billing-metrics"}',
        "values": "5x20",
    },
    {
        "series": 'kube_pod_deletion_timestamp{namespace="clinic",pod="support-c",'
        'job="kube-state-metrics"}',
        "values": "1790000000x20",
    },
]


def test_adapter_rule_serves_calls_per_pod(tmp_path: Path) -> None:
    """What the HPA of "support" receives for its pods (the HPA itself ignores pods being
    deleted, so support-c's value is harmless there)."""
    query = _adapter_query('namespace="clinic",pod=~"support-a|support-b|support-c"', "pod")
    promtool_test(
        tmp_path,
        {"adapter:kubevox_active_calls": query},
        [
            {
                "interval": "15s",
                "input_series": SERIES,
                "promql_expr_test": [
                    {
                        "expr": "adapter:kubevox_active_calls",
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": 'adapter:kubevox_active_calls{pod="support-a"}', "value": 3},
                            {"labels": 'adapter:kubevox_active_calls{pod="support-b"}', "value": 1},
                            {"labels": 'adapter:kubevox_active_calls{pod="support-c"}', "value": 2},
                        ],
                    }
                ],
            }
        ],
    )


def test_keda_query_excludes_terminating_pods_and_other_agents(tmp_path: Path) -> None:
    """The query of VoiceAgent "support"'s ScaledObject (builders.autoscaling.scaled_object),
    which KEDA divides by targetCallsPerPod, when the operator's count is missing (not scraped,
    or LiveKit unreachable from it): the workers' own gauge."""
    promtool_test(
        tmp_path,
        {"keda:support_calls": calls_query("clinic", "support")},
        [
            {
                "interval": "15s",
                "input_series": SERIES,
                "promql_expr_test": [
                    {
                        "expr": "keda:support_calls",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "keda:support_calls", "value": 4}],
                    }
                ],
            },
            # No worker pod exports anything yet: 0, not "no data" (KEDA would error).
            {
                "interval": "15s",
                "input_series": SERIES[3:],
                "promql_expr_test": [
                    {
                        "expr": "keda:support_calls",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "keda:support_calls", "value": 0}],
                    }
                ],
            },
            # Without kube-state-metrics nothing is excluded: every pod's calls count.
            {
                "interval": "15s",
                "input_series": SERIES[:4],
                "promql_expr_test": [
                    {
                        "expr": "keda:support_calls",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "keda:support_calls", "value": 6}],
                    }
                ],
            },
        ],
    )


# What the operator exports (waiting_poll.py), scraped from its pods: the scrape's namespace
# label is the operator's, the agent's namespace has a label of its own. Two replicas report
# "support" for a moment (a peering hand-over); "billing" is another agent.
AGENT_CALLS = [
    {
        "series": 'kubevox_agent_calls{namespace="kubevox-system",pod="kubevox-operator-0",'
        'agent_namespace="clinic",agent="support"}',
        "values": "6x20",
    },
    {
        "series": 'kubevox_agent_calls{namespace="kubevox-system",pod="kubevox-operator-1",'
        'agent_namespace="clinic",agent="support"}',
        "values": "5x20",
    },
    {
        "series": 'kubevox_agent_calls{namespace="kubevox-system",pod="kubevox-operator-0",'
        'agent_namespace="clinic",agent="billing"}',
        "values": "9x20",
    },
]


def test_keda_query_reads_the_operators_count_of_calls(tmp_path: Path) -> None:
    """The operator counts the workers' calls and the waiting callers in one look, so a call a
    worker has just taken is never counted twice; with no worker pod at all (scaled to zero) the
    waiting callers are the whole signal. Its count wins over the workers' own gauge (which
    cannot see a waiting caller), and the highest replica's count over another's."""

    def case(series: list[dict[str, str]], value: int) -> dict[str, Any]:
        return {
            "interval": "15s",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": "keda:support_calls",
                    "eval_time": "2m",
                    "exp_samples": [{"labels": "keda:support_calls", "value": value}],
                }
            ],
        }

    promtool_test(
        tmp_path,
        {"keda:support_calls": calls_query("clinic", "support")},
        [
            case(SERIES + AGENT_CALLS, 6),
            case(AGENT_CALLS[1:], 5),
            # The operator reports only another agent: the workers' count of this one.
            case(SERIES + AGENT_CALLS[2:], 4),
        ],
    )


def test_keda_query_quotes_label_values(tmp_path: Path) -> None:
    """A value with a quote and a backslash selects exactly its series (names are DNS labels:
    this guards the quoting, not a real case)."""
    odd = 'a"b\\c'
    promtool_test(
        tmp_path,
        {"keda:odd_calls": calls_query("clinic", odd)},
        [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": 'kubevox_active_calls{namespace="clinic",pod="p",'
                        'agent="a\\"b\\\\c"}',
                        "values": "7x20",
                    },
                    {
                        "series": 'kubevox_active_calls{namespace="clinic",pod="q",agent="a"}',
                        "values": "5x20",
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": "keda:odd_calls",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "keda:odd_calls", "value": 7}],
                    }
                ],
            }
        ],
    )


def _dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return [filled(e, window="1m") for e in exprs]


def _exported_names(collectors: list[Collector]) -> set[str]:
    names = set()
    for c in collectors:
        for family in c.collect():
            names |= {s.name for s in family.samples} | {family.name}
    return names


def test_dashboard_queries_parse_and_name_exported_metrics(tmp_path: Path) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 15
    rules = {f"dashboard:q{i}": q for i, q in enumerate(queries)}
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [{"record": k, "expr": v} for k, v in rules.items()],
                    }
                ]
            }
        )
    )
    proc = run([promtool(), "check", "rules", tmp_path / "rules.yaml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr

    parent = runtime_metrics.ParentCollector("a", "ns", lambda: 0, lambda: 0.0)
    # Label the runtime's histograms and counters once so their samples are listed.
    for m in (
        *runtime_metrics.CALL_METRICS,
        operator_metrics.RECONCILES,
        operator_metrics.RECONCILE_SECONDS,
        operator_metrics.MANAGED_OBJECTS,
        operator_metrics.API_WRITES,
    ):
        assert isinstance(m, MetricWrapperBase)
        m.labels(*["x"] * len(m._labelnames))
    exported = _exported_names(
        [
            *runtime_metrics.CALL_METRICS,
            parent,
            operator_metrics.RECONCILES,
            operator_metrics.RECONCILE_SECONDS,
            operator_metrics.MANAGED_OBJECTS,
            operator_metrics.API_WRITES,
            operator_metrics.QUEUE_DEPTH,
            _priced(tmp_path),
        ]
    )
    used = {name for q in queries for name in re.findall(r"\bkubevox_\w+", q)}
    assert used - exported == set()
    # The panels the dashboard promises.
    for metric in (
        ACTIVE_CALLS_METRIC,
        runtime_metrics.E2E + "_bucket",
        runtime_metrics.PROVIDER_ERRORS,
        runtime_metrics.LLM_FALLBACKS,
        "kubevox_operator_reconciles_total",
        "kubevox_operator_reconcile_duration_seconds_bucket",
        USAGE_METRIC,
        UNIT_PRICE_METRIC,
    ):
        assert metric in used, metric


def _priced(tmp_path: Path) -> UnitPriceCollector:
    path = tmp_path / "prices.yaml"
    path.write_text("models: [{model: m, sttPerMinute: 1}]\n")
    return UnitPriceCollector(path)


# What the workers of two agents consumed in 10 minutes (counters scraped every 15 s: 41
# samples), and the prices two operator replicas export (a peering hand-over: both at once).
USAGE = [
    # support: 60 000 uncached input and 6 000 output tokens of gpt-4o-mini, 600 s of audio
    # transcribed by nova-3, 30 000 characters of sonic-2; billing: 600 s of nova-3 and a
    # model with no price.
    ("support", "gpt-4o-mini", "llm_input_token", 1500),
    ("support", "gpt-4o-mini", "llm_output_token", 150),
    ("support", "nova-3", "stt_audio_second", 15),
    ("support", "sonic-2", "tts_character", 750),
    ("billing", "nova-3", "stt_audio_second", 15),
    ("billing", "unpriced", "llm_input_token", 1000),
]
PRICES = {  # per unit, as the operator exports them from per-million and per-minute prices
    ("gpt-4o-mini", "llm_input_token"): 0.15e-6,
    ("gpt-4o-mini", "llm_output_token"): 0.6e-6,
    ("nova-3", "stt_audio_second"): 0.0043 / 60,
    ("sonic-2", "tts_character"): 30e-6,
}


def test_dashboard_estimates_each_agents_cost_from_usage_and_prices(tmp_path: Path) -> None:
    """The dashboard's cost per hour and per call, evaluated by Prometheus on what the workers
    and the operator export: usage times the unit price of its model, summed per agent; a model
    with no price counts for nothing; two replicas' prices are not counted twice."""
    series = [
        {
            "series": f'{USAGE_METRIC}{{namespace="clinic",pod="{a}-0",agent="{a}",'
            f'provider="p",model="{m}",unit="{u}"}}',
            "values": f"0+{step}x40",
        }
        for a, m, u, step in USAGE
    ]
    series += [
        {
            "series": f'{UNIT_PRICE_METRIC}{{namespace="kubevox-system",pod="op-{i}",'
            f'model="{m}",unit="{u}",currency="USD"}}',
            "values": f"{price}x40",
        }
        for i in range(2)
        for (m, u), price in PRICES.items()
    ]
    series += [  # support ended 10 calls in the 10 minutes, billing 5
        {
            "series": f'kubevox_calls_total{{namespace="clinic",pod="{a}-0",agent="{a}",'
            f'config_hash="h",outcome="completed"}}',
            "values": f"0+{n / 40}x40",
        }
        for a, n in (("support", 10), ("billing", 5))
    ]
    # Per 10 minutes: support 60 000 x 0.15e-6 + 6 000 x 0.6e-6 + 10 min x 0.0043
    # + 30 000 x 30e-6 = 0.009 + 0.0036 + 0.043 + 0.9; billing 10 min x 0.0043.
    support, billing = 0.009 + 0.0036 + 0.043 + 0.9, 0.043
    rules = {
        "dash:cost_per_hour": panel_query("Estimated cost per hour by agent"),
        "dash:cost_per_call": panel_query("Estimated cost per call by agent"),
    }

    def sample(agent: str, value: float) -> dict[str, Any]:
        labels = f'{{namespace="clinic",agent="{agent}",currency="USD"}}'
        return {"labels": labels, "value": round(value, 6)}

    def expect(record: str, values: dict[str, float]) -> dict[str, Any]:
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
                "input_series": series,
                "promql_expr_test": [
                    expect("dash:cost_per_hour", {"support": support * 6, "billing": billing * 6}),
                    expect("dash:cost_per_call", {"support": support / 10, "billing": billing / 5}),
                ],
            }
        ],
    )
