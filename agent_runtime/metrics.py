"""Every Prometheus metric the runtime exports, named in one place.

Jobs run in child processes: counters and histograms there use prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``kubevox-agent start`` before any
process starts), and the parent aggregates the files at scrape time. ``kubevox_active_calls``
is not a child metric at all: the parent reads it from the AgentServer's running jobs when it
is scraped, so it is exact even if a job process dies without cleaning up.
Labels are the agent and namespace only — never per call; the metrics of calls and their turns
also name the configuration (``config_hash``: a handful of values in an agent's life), by which
a canary rollout judges the new configuration apart from the stable one.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable

from kubevox_api import contract
from kubevox_api.contract import ACTIVE_CALLS_METRIC
from kubevox_api.pricing import USAGE_METRIC
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ACTIVE_CALLS = ACTIVE_CALLS_METRIC  # the autoscaler's signal: named once, in the contract
CALLS_TOTAL = contract.CALLS_TOTAL_METRIC
END_OF_UTTERANCE = "kubevox_turn_end_of_utterance_seconds"
LLM_TTFT = "kubevox_turn_llm_ttft_seconds"
TTS_TTFB = "kubevox_turn_tts_ttfb_seconds"
E2E = contract.VOICE_TO_VOICE_METRIC
PROVIDER_ERRORS = "kubevox_provider_errors_total"
LLM_FALLBACKS = "kubevox_llm_fallbacks_total"
RETRIEVAL_LATENCY = "kubevox_retrieval_seconds"
RETRIEVAL_FAILURES = "kubevox_retrieval_failures_total"
RETRIEVAL_WAIT = "kubevox_retrieval_wait_seconds"
TURNS_TOTAL = contract.TURNS_TOTAL_METRIC
APOLOGIES_TOTAL = contract.APOLOGIES_TOTAL_METRIC
WORKER_LOAD = "kubevox_worker_load"
WORKER_REGISTERED = "kubevox_worker_registered"
CALL_EVENTS_DELIVERED = "kubevox_call_events_delivered_total"
CALL_EVENTS_FAILED = "kubevox_call_events_failed_total"
CALL_EVENTS_DROPPED = "kubevox_call_events_dropped_total"
USAGE_TOTAL = USAGE_METRIC  # priced by the operator's kubevox_unit_price: named in the API
CALLER_SENTIMENT = "kubevox_caller_sentiment"
CALLS_TURNED_NEGATIVE = "kubevox_calls_turned_negative_total"
RECORDING_UPLOADS = "kubevox_recording_uploads_total"

MMAP_HEADER_BYTES = 4
"""prometheus-client's multiprocess file starts with the count of bytes in use (an int32)."""

LABELS = ("agent", "namespace")
CALL_LABELS = (*LABELS, "config_hash")
# Voice turns live between ~50 ms and a few seconds.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RETRIEVAL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
# VADER's scores, -1..1; ±0.05 are its own bounds of neutral, so the dashboard's shares of
# negative and positive turns are read from the buckets.
SENTIMENT_BUCKETS = (-1.0, -0.75, -0.5, -0.25, -0.05, 0.05, 0.25, 0.5, 0.75, 1.0)

calls_total = Counter(CALLS_TOTAL, "Calls ended, by outcome.", [*CALL_LABELS, "outcome"])
end_of_utterance = Histogram(
    END_OF_UTTERANCE,
    "End of user speech to end-of-turn decision.",
    CALL_LABELS,
    buckets=LATENCY_BUCKETS,
)
llm_ttft = Histogram(
    LLM_TTFT, "LLM time to first token per turn.", CALL_LABELS, buckets=LATENCY_BUCKETS
)
tts_ttfb = Histogram(
    TTS_TTFB, "TTS time to first audio byte per turn.", CALL_LABELS, buckets=LATENCY_BUCKETS
)
e2e = Histogram(
    E2E, "End of user speech to first agent audio.", CALL_LABELS, buckets=LATENCY_BUCKETS
)
usage_total = Counter(
    USAGE_TOTAL,
    "Units the agent's calls consumed (kubevox_api.pricing.UsageUnit), by provider and model.",
    [*LABELS, "provider", "model", "unit"],
)
turns_total = Counter(TURNS_TOTAL, "Messages the agent said, its greeting included.", CALL_LABELS)
apologies_total = Counter(
    APOLOGIES_TOTAL,
    "Replies that were the agent's apology (every language model failed) or its grounding "
    "guard's refusal.",
    CALL_LABELS,
)
caller_sentiment = Histogram(
    CALLER_SENTIMENT,
    "Each caller turn's sentiment, -1 (negative) to +1 (positive), scored after the reply.",
    CALL_LABELS,
    buckets=SENTIMENT_BUCKETS,
)
calls_turned_negative = Counter(
    CALLS_TURNED_NEGATIVE,
    "Times a call's mean sentiment over its last turns fell below its agent's negativeBelow.",
    CALL_LABELS,
)
recording_uploads = Counter(
    RECORDING_UPLOADS,
    "Call recordings uploaded to storage, or that failed to.",
    [*LABELS, "result"],
)
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
call_events_delivered = Counter(
    CALL_EVENTS_DELIVERED, "Call events a sink took.", [*LABELS, "sink"]
)
call_events_failed = Counter(
    CALL_EVENTS_FAILED, "Attempts to deliver a call event that failed (retried).", [*LABELS, "sink"]
)
call_events_dropped = Counter(
    CALL_EVENTS_DROPPED,
    "Call events given up undelivered (older than the outbox's maxAgeSeconds, or trimmed).",
    [*LABELS, "sink"],
)
CALL_OUTCOMES = (
    "completed",
    "caller_hung_up",
    "agent_ended",
    "transferred",
    "max_duration",
    "silence_timeout",
    "error",
)


def start_call_series(agent: str, namespace: str, config_hash: str) -> None:
    """The configuration's call counters, at 0 before its first call. Prometheus' increase()
    cannot count a series' first sample: one that appeared at 1 would hide a canary's first
    error, transfer or apology from its rollout's analysis."""
    labels = (agent, namespace, config_hash)
    for outcome in CALL_OUTCOMES:
        calls_total.labels(*labels, outcome)
    turns_total.labels(*labels)
    apologies_total.labels(*labels)


def start_sentiment_series(agent: str, namespace: str, config_hash: str) -> None:
    """The configuration's sentiment series, at 0 before its first call (as the call counters
    are, for the same reason): the dashboard's rates would otherwise miss each process's first
    scored turn."""
    labels = (agent, namespace, config_hash)
    caller_sentiment.labels(*labels)
    calls_turned_negative.labels(*labels)


CALL_METRICS: tuple[Collector, ...] = (
    calls_total,
    end_of_utterance,
    llm_ttft,
    tts_ttfb,
    e2e,
    turns_total,
    apologies_total,
    caller_sentiment,
    calls_turned_negative,
    recording_uploads,
    provider_errors,
    llm_fallbacks,
    retrieval_latency,
    retrieval_wait,
    retrieval_failures,
    call_events_delivered,
    call_events_failed,
    call_events_dropped,
    usage_total,
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


class ChildMetrics(Collector):
    """prometheus-client's multiprocess collector, without the files it cannot read yet. A job
    process that starts (one replaces each process a call takes) creates its file empty and
    sizes it a moment later: a scrape in that moment would fail whole, an HTTP 500 that loses
    the pod's active calls to the autoscaler. Such a file is left to the next scrape."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self.path, "*.db")):
            try:
                size = os.stat(path).st_size
            except OSError:
                continue  # removed since it was listed
            # Shorter than its header (the bytes in use): opened, not yet sized. Once sized,
            # the header is written last, so a reader never sees an entry half written.
            if size >= MMAP_HEADER_BYTES:
                files.append(path)
        merged: Iterable[Metric] = multiprocess.MultiProcessCollector.merge(files)  # type: ignore[no-untyped-call]
        return merged


def scrape_registry(parent: Collector | None = None) -> CollectorRegistry:
    """The registry served on /metrics: child-process metrics plus the parent's gauges."""
    registry = CollectorRegistry()
    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry.register(ChildMetrics(path))
    else:  # single process (chat, tests): the metrics live in this process
        for metric in CALL_METRICS:
            registry.register(metric)
    if parent is not None:
        registry.register(parent)
    return registry
