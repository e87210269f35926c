"""``kubevox-operator``: reconcile VoiceAgents and KnowledgeBases in every namespace (or some)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

import kopf

from . import logs, metrics
from .builders import OperatorDefaults
from .controller import Controller, Settings
from .handlers import register

DEFAULT_IMAGE = "ghcr.io/kubevox/agent-runtime:0.1.0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="kubevox-operator", description=__doc__)
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; globs allowed); default: all",
    )
    p.add_argument(
        "--image",
        default=env("KUBEVOX_RUNTIME_IMAGE", DEFAULT_IMAGE),
        help="default runtime image of agents and ingestion Jobs (env KUBEVOX_RUNTIME_IMAGE)",
    )
    p.add_argument(
        "--prometheus-url",
        type=_http_url,
        default=env("KUBEVOX_PROMETHEUS_URL", ""),
        help="Prometheus the KEDA ScaledObjects of agents with spec.scaling.autoscaler keda "
        "query, e.g. http://prometheus-operated.monitoring.svc:9090 (env "
        "KUBEVOX_PROMETHEUS_URL; none: such agents get no autoscaler and say why)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("KUBEVOX_METRICS_PORT", "9090")),
        help="port of the operator's /metrics (0: off)",
    )
    p.add_argument(
        "--liveness",
        default=env("KUBEVOX_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="liveness endpoint URL ('' disables)",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: only for a single replica or development",
    )
    p.add_argument(
        "--peering",
        default=env("KUBEVOX_PEERING", "kubevox"),
        help="ClusterKopfPeering name shared by the operator's replicas",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority (default: random, so two replicas never tie)",
    )
    p.add_argument("--workers", type=int, default=16, help="concurrent reconciles")
    p.add_argument(
        "--resync-seconds",
        type=float,
        default=float(env("KUBEVOX_RESYNC_SECONDS", "300")),
        help="look at every object this often (writes only on real difference)",
    )
    p.add_argument(
        "--retry-max-seconds",
        type=float,
        default=float(env("KUBEVOX_RETRY_MAX_SECONDS", "60")),
        help="cap of the backoff while a Secret or source is missing",
    )
    p.add_argument(
        "--sip-poll-seconds",
        type=float,
        default=float(env("KUBEVOX_SIP_POLL_SECONDS", "60")),
        help="compare agents' SIP trunks and dispatch rules with LiveKit this often (no watch)",
    )
    p.add_argument("--log-level", default=env("KUBEVOX_LOG_LEVEL", "info"))
    p.add_argument(
        "--log-format", choices=["json", "text"], default=env("KUBEVOX_LOG_FORMAT", "json")
    )
    return p.parse_args(argv)


def _http_url(value: str) -> str:
    """An http(s) URL with a host, or "" (none)."""
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed: the operator is mostly event-loop work (watch events,
    requests); with it a burst of 500 new agents costs the operator a fifth to a third less
    CPU (docs/benchmarks.md, "Operator")."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


GC_THRESHOLDS = (20_000, 50, 100)
"""CPython's defaults are (700, 10, 10)."""


def gc_thresholds(value: str | None) -> tuple[int, int, int]:
    """``KUBEVOX_GC=a,b,c`` overrides GC_THRESHOLDS (for measuring, docs/benchmarks.md)."""
    if not value:
        return GC_THRESHOLDS
    parts = value.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise SystemExit(f"KUBEVOX_GC must be three integers a,b,c, not {value!r}")
    a, b, c = (int(p) for p in parts)
    return a, b, c


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Collect less often. The heap is mostly JSON trees from watch events and responses, which
    hold no reference cycles, yet CPython's default thresholds ran the collector over them again
    and again: 17 % of the operator's CPU while 500 new agents were reconciled, 3.8 s over a
    bench run, 1.3 s with these (docs/benchmarks.md). What is alive after start-up (modules,
    schemas) is frozen out of collection altogether."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune_gc(gc_thresholds(os.environ.get("KUBEVOX_GC")))
    logs.setup(args.log_level, args.log_format)
    metrics.serve(args.metrics_port)
    controller = Controller(
        Settings(
            defaults=OperatorDefaults(image=args.image, prometheus_url=args.prometheus_url),
            workers=args.workers,
            resync_seconds=args.resync_seconds,
            retry_max_seconds=args.retry_max_seconds,
            sip_poll_seconds=args.sip_poll_seconds,
        )
    )
    registry = kopf.OperatorRegistry()
    register(registry, controller)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(
            kopf.operator(
                registry=registry,
                clusterwide=not args.namespace,
                namespaces=args.namespace,
                standalone=args.standalone,
                peering_name=None if args.standalone else args.peering,
                priority=args.priority if args.priority is not None else random.randint(1, 2**30),
                liveness_endpoint=args.liveness or None,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
