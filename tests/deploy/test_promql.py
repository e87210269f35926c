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
from kubevox_operator import metrics as operator_metrics
from kubevox_operator.builders.autoscaling import calls_query
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from agent_runtime import metrics as runtime_metrics
from tests.support.tools import MANIFESTS, promtool, run

ADAPTER_VALUES = MANIFESTS / "monitoring" / "prometheus-adapter-values.yaml"
DASHBOARD = MANIFESTS / "monitoring" / "grafana-dashboard.json"


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


def _promtool_test(tmp_path: Path, rules: dict[str, str], tests: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "kubevox",
                        "interval": "15s",
                        "rules": [{"record": name, "expr": expr} for name, expr in rules.items()],
                    }
                ]
            }
        )
    )
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "15s", "tests": tests})
    )
    proc = run([promtool(), "test", "rules", tmp_path / "test.yaml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
    _promtool_test(
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
    _promtool_test(
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

    _promtool_test(
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
    _promtool_test(
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
    return [
        e.replace("$__rate_interval", "1m").replace("$namespace", ".*").replace("$agent", ".*")
        for e in exprs
    ]


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
    ):
        assert metric in used, metric
