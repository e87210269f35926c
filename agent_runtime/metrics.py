"""Every Prometheus metric the runtime exports, named in one place.

Jobs run in child processes: counters and histograms there use prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``kubevox-agent start`` before any
process starts), and the parent aggregates the files at scrape time. ``kubevox_active_calls``
is not a child metric at all: the parent reads it from the AgentServer's running jobs when it
is scraped, so it is exact even if a job process dies without cleaning up.
Labels are the agent and namespace only — never per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from kubevox_api.contract import ACTIVE_CALLS_METRIC
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ACTIVE_CALLS = ACTIVE_CALLS_METRIC  # the autoscaler's signal: named once, in the contract
CALLS_TOTAL = "kubevox_calls_total"
END_OF_UTTERANCE = "kubevox_turn_end_of_utterance_seconds"
LLM_TTFT = "kubevox_turn_llm_ttft_seconds"
TTS_TTFB = "kubevox_turn_tts_ttfb_seconds"
E2E = "kubevox_turn_e2e_seconds"
PROVIDER_ERRORS = "kubevox_provider_errors_total"
LLM_FALLBACKS = "kubevox_llm_fallbacks_total"
RETRIEVAL_LATENCY = "kubevox_retrieval_seconds"
RETRIEVAL_FAILURES = "kubevox_retrieval_failures_total"
RETRIEVAL_WAIT = "kubevox_retrieval_wait_seconds"
WORKER_LOAD = "kubevox_worker_load"
WORKER_REGISTERED = "kubevox_worker_registered"

LABELS = ("agent", "namespace")
# Voice turns live between ~50 ms and a few seconds.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RETRIEVAL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

calls_total = Counter(CALLS_TOTAL, "Calls ended, by outcome.", [*LABELS, "outcome"])
end_of_utterance = Histogram(
    END_OF_UTTERANCE,
    "End of user speech to end-of-turn decision.",
    LABELS,
    buckets=LATENCY_BUCKETS,
)
llm_ttft = Histogram(LLM_TTFT, "LLM time to first token per turn.", LABELS, buckets=LATENCY_BUCKETS)
tts_ttfb = Histogram(
    TTS_TTFB, "TTS time to first audio byte per turn.", LABELS, buckets=LATENCY_BUCKETS
)
e2e = Histogram(E2E, "End of user speech to first agent audio.", LABELS, buckets=LATENCY_BUCKETS)
provider_errors = Counter(
    PROVIDER_ERRORS,
    "Errors from speech and language providers.",
    [*LABELS, "provider", "kind"],
)
llm_fallbacks = Counter(LLM_FALLBACKS, "Times an LLM endpoint failed over to the next.", LABELS)
retrieval_latency = Histogram(
    RETRIEVAL_LATENCY, "Knowledge retrieval latency per turn.", LABELS, buckets=RETRIEVAL_BUCKETS
)
retrieval_wait = Histogram(
    RETRIEVAL_WAIT,
    "Time a reply waited for its knowledge lookup (near 0 when it was started at the caller's "
    "final transcript and finished during the endpointing delay).",
    LABELS,
    buckets=RETRIEVAL_BUCKETS,
)
retrieval_failures = Counter(RETRIEVAL_FAILURES, "Knowledge retrievals that failed.", LABELS)
CALL_METRICS: tuple[Collector, ...] = (
    calls_total,
    end_of_utterance,
    llm_ttft,
    tts_ttfb,
    e2e,
    provider_errors,
    llm_fallbacks,
    retrieval_latency,
    retrieval_wait,
    retrieval_failures,
)


class ParentCollector(Collector):
    """Gauges computed in the worker's parent process at scrape time."""

    def __init__(
        self,
        agent: str,
        namespace: str,
        active_calls: Callable[[], int],
        load: Callable[[], float],
        registered: Callable[[], bool] = lambda: False,
    ) -> None:
        self._labels = [agent, namespace]
        self._active_calls = active_calls
        self._load = load
        self._registered = registered

    def collect(self) -> Iterable[Metric]:
        calls = GaugeMetricFamily(ACTIVE_CALLS, "Calls in progress in this pod.", labels=LABELS)
        calls.add_metric(self._labels, float(self._active_calls()))
        load = GaugeMetricFamily(WORKER_LOAD, "Load reported to LiveKit (0..1).", labels=LABELS)
        load.add_metric(self._labels, self._load())
        registered = GaugeMetricFamily(
            WORKER_REGISTERED,
            "1 once the worker is registered with LiveKit and can be given calls.",
            labels=LABELS,
        )
        registered.add_metric(self._labels, 1.0 if self._registered() else 0.0)
        return [calls, load, registered]


def scrape_registry(parent: Collector | None = None) -> CollectorRegistry:
    """The registry served on /metrics: child-process metrics plus the parent's gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:  # single process (chat, tests): the metrics live in this process
        for metric in CALL_METRICS:
            registry.register(metric)
    if parent is not None:
        registry.register(parent)
    return registry
