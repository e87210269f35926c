"""``kubevox-operator``: reconcile VoiceAgents and KnowledgeBases in every namespace (or some)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import secrets
import socket
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import kopf
from kubevox_api import contract

from . import logs, metrics, unit_prices
from .builders import OperatorDefaults
from .builders.network import EgressSettings
from .controller import Controller
from .egress import Network, parse_cidrs
from .handlers import register
from .kube import Kube
from .peering import PeeringGate
from .policy import AgentPolicy
from .settings import Settings

log = logging.getLogger("kubevox.main")

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
        "--ingest-allowed-cidrs",
        type=_cidr_text,
        default=_cidr_text(env(contract.INGEST_ALLOWED_CIDRS_ENV, "")),
        help="internal networks (comma-separated CIDRs) that KnowledgeBase url sources may "
        "reach, passed to ingestion Jobs (env KUBEVOX_INGEST_ALLOWED_CIDRS); default none: "
        "loopback, private, link-local, metadata and other internal addresses are refused",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("KUBEVOX_METRICS_PORT", "9090")),
        help="port of the operator's /metrics (0: off)",
    )
    p.add_argument(
        "--unit-prices-file",
        default=env("KUBEVOX_UNIT_PRICES_FILE", unit_prices.DEFAULT_PATH),
        help="the unit price list (kubevox_api.pricing, ConfigMap kubevox-unit-prices) exported"
        " as kubevox_unit_price at each scrape; no file: no prices",
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
    p.add_argument(
        "--rollout-settle-seconds",
        type=float,
        default=float(env("KUBEVOX_ROLLOUT_SETTLE_SECONDS", "75")),
        help="how long a canary's new split takes to reach every pod: kubelet's syncFrequency"
        " (default 1 min) and a margin",
    )
    p.add_argument(
        "--allowed-image-prefix",
        action="append",
        default=_csv(env("KUBEVOX_ALLOWED_IMAGE_PREFIXES", "")),
        help="a VoiceAgent's spec.image must start with one of these (repeatable; env "
        "KUBEVOX_ALLOWED_IMAGE_PREFIXES, comma-separated; none: any image); others get "
        "Degraded, reason ImageNotAllowed",
    )
    p.add_argument(
        "--allow-foreign-service-accounts",
        action=argparse.BooleanOptionalAction,
        default=_bool(env("KUBEVOX_ALLOW_FOREIGN_SERVICE_ACCOUNTS", "true")),
        help="whether spec.pod.serviceAccountName may name a ServiceAccount the operator did "
        "not create (env KUBEVOX_ALLOW_FOREIGN_SERVICE_ACCOUNTS; refused: Degraded, reason "
        "ServiceAccountNotAllowed); the worker role is never bound to one",
    )
    p.add_argument(
        "--network-policies",
        action=argparse.BooleanOptionalAction,
        default=_bool(env("KUBEVOX_NETWORK_POLICIES", "true")),
        help="a default-deny egress NetworkPolicy per VoiceAgent's workers and per "
        "KnowledgeBase's ingestion Jobs (env KUBEVOX_NETWORK_POLICIES)",
    )
    p.add_argument(
        "--egress-api-server-cidr",
        action="append",
        default=_csv(env("KUBEVOX_EGRESS_API_SERVER_CIDRS", "")),
        help="where workers reach the Kubernetes API (repeatable; env "
        "KUBEVOX_EGRESS_API_SERVER_CIDRS; none: ports 443 and 6443 anywhere)",
    )
    p.add_argument(
        "--egress-extra",
        type=_egress_rules,
        default=_egress_rules(env("KUBEVOX_EGRESS_EXTRA", "")),
        help="JSON list of NetworkPolicyEgressRules added to every egress policy (env "
        "KUBEVOX_EGRESS_EXTRA), e.g. a proxy or internal sources",
    )
    p.add_argument(
        "--livekit-allowed-cidrs",
        type=_cidrs,
        default=_cidrs(env("KUBEVOX_LIVEKIT_ALLOWED_CIDRS", "")),
        help="comma-separated CIDRs of internal addresses the operator may contact as a "
        "spec.livekit.url (SIP, calls waiting for a worker), e.g. the cluster's Service and "
        "pod ranges for an in-cluster LiveKit; loopback, link-local (cloud metadata), private "
        "and shared addresses outside them are refused (env KUBEVOX_LIVEKIT_ALLOWED_CIDRS; "
        "default: none)",
    )
    p.add_argument(
        "--sip-cleanup-timeout-seconds",
        type=float,
        default=float(env("KUBEVOX_SIP_CLEANUP_TIMEOUT_SECONDS", "600")),
        help="a deleted VoiceAgent with telephony waits this long for LiveKit to remove its SIP "
        "trunk and rule, then is released with a Warning Event naming what may be left",
    )
    p.add_argument("--log-level", default=env("KUBEVOX_LOG_LEVEL", "info"))
    p.add_argument(
        "--log-format", choices=["json", "text"], default=env("KUBEVOX_LOG_FORMAT", "json")
    )
    return p.parse_args(argv)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _bool(value: str) -> bool:
    if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise SystemExit(f"expected true or false, not {value!r}")
    return value.strip().lower() in ("true", "1", "yes")


def _egress_rules(value: str) -> tuple[dict[str, Any], ...]:
    """A JSON list of NetworkPolicyEgressRule objects ("" = none)."""
    if not value.strip():
        return ()
    try:
        rules = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--egress-extra is not JSON: {exc}") from None
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise argparse.ArgumentTypeError("--egress-extra must be a JSON list of objects")
    return tuple(rules)


def _http_url(value: str) -> str:
    """An http(s) URL with a host, or "" (none)."""
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


def _cidrs(value: str) -> tuple[Network, ...]:
    try:
        return parse_cidrs(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def peering_resource(clusterwide: bool) -> tuple[str, str]:
    """The kopf peering kind replicas coordinate through (group/version, plural)."""
    return "kopf.dev/v1", "clusterkopfpeerings" if clusterwide else "kopfpeerings"


async def peering_served(clusterwide: bool) -> bool | None:
    """Whether the cluster serves kopf's peering kind (None: the cluster could not be asked,
    kopf will say why). Without it kopf would wait for the CRD silently, reconciling nothing."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(
        logger=log, settings=settings
    ) or kopf.login_with_kubeconfig(logger=log, settings=settings)
    if info is None:
        return None
    kube = Kube(info)
    try:
        return await kube.has_api(*peering_resource(clusterwide))
    except OSError:
        return None
    finally:
        await kube.close()


def choose_standalone(requested: bool, served: bool | None, clusterwide: bool) -> bool:
    if requested or served is not False:
        return requested
    log.warning(
        "the cluster has no %s.kopf.dev CRD (kopf peering): running standalone, as with "
        "--standalone. Run a single replica, or install the chart's crds/ to run several",
        peering_resource(clusterwide)[1],
    )
    return True


def _cidr_text(value: str) -> str:
    """Comma-separated CIDRs, normalised ("" for none), to pass on in a child's environment."""
    return ",".join(str(n) for n in _cidrs(value))


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
    unit_prices.register(args.unit_prices_file)
    metrics.serve(args.metrics_port)
    controller = Controller(
        Settings(
            defaults=OperatorDefaults(
                image=args.image,
                prometheus_url=args.prometheus_url,
                ingest_allowed_cidrs=args.ingest_allowed_cidrs,
            ),
            workers=args.workers,
            resync_seconds=args.resync_seconds,
            retry_max_seconds=args.retry_max_seconds,
            sip_poll_seconds=args.sip_poll_seconds,
            rollout_settle_seconds=args.rollout_settle_seconds,
            agent_policy=AgentPolicy(
                allowed_image_prefixes=tuple(args.allowed_image_prefix),
                allow_foreign_service_accounts=args.allow_foreign_service_accounts,
            ),
            egress=EgressSettings(
                api_server_cidrs=tuple(args.egress_api_server_cidr), extra=args.egress_extra
            )
            if args.network_policies
            else None,
            livekit_allowed=args.livekit_allowed_cidrs,
            sip_cleanup_timeout_seconds=args.sip_cleanup_timeout_seconds,
            namespaces=tuple(args.namespace or ()),
        )
    )
    registry = kopf.OperatorRegistry()
    register(registry, controller)
    clusterwide = not args.namespace
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        served = None if args.standalone else runner.run(peering_served(clusterwide))
        standalone = choose_standalone(args.standalone, served, clusterwide)
        priority = args.priority if args.priority is not None else random.randint(1, 2**30)
        # Our own identity, given to kopf, so that the gate judges kopf's entry for this replica.
        identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}/{secrets.token_hex(4)}"
        if not standalone:
            controller.gate = PeeringGate(
                lambda: controller.kube, identity, priority, args.peering, args.namespace or ()
            )
        runner.run(
            kopf.operator(
                registry=registry,
                clusterwide=clusterwide,
                namespaces=args.namespace,
                standalone=standalone,
                peering_name=None if standalone else args.peering,
                priority=priority,
                identity=identity,  # type: ignore[arg-type]  # kopf's Identity: a NewType of str
                liveness_endpoint=args.liveness or None,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
