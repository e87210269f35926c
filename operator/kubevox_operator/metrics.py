"""The operator's own Prometheus metrics."""

from __future__ import annotations

from kubevox_api import contract
from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "kubevox_operator_reconciles_total", "Reconciles, by kind and outcome.", ["kind", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "kubevox_operator_reconcile_duration_seconds",
    "Time of one reconcile.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MANAGED_OBJECTS = Gauge(
    "kubevox_operator_managed_objects", "Objects the operator watches, by kind.", ["kind"]
)
API_WRITES = Counter(
    "kubevox_operator_api_writes_total", "Write requests sent to the API server.", ["verb", "kind"]
)
WAITING_CALLS = Gauge(
    contract.WAITING_CALLS_METRIC,
    "Callers in a LiveKit room that no worker of the agent has taken yet.",
    # Not "namespace": a scrape of the operator sets that label to the operator's own namespace.
    ["agent_namespace", "agent"],
)
AGENT_CALLS = Gauge(
    contract.AGENT_CALLS_METRIC,
    "Calls in progress on the agent's workers that are not terminating, plus its waiting callers,"
    " counted in one look (what KEDA scales the agent on).",
    ["agent_namespace", "agent"],
)
QUEUE_DEPTH = Gauge("kubevox_operator_queue_depth", "Objects waiting to be reconciled.")


def serve(port: int) -> None:
    """Serve /metrics on ``port`` (0 disables)."""
    if port:
        start_http_server(port)
