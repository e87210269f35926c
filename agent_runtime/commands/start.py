"""``kubevox-agent start``: the production worker.

Everything that can be wrong with the config or the environment is checked before anything
connects; then livekit's own production run loop takes over (SIGTERM drains: no new calls,
live calls finish within drainTimeoutSeconds, exit 0).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kubevox_api import CONFIG_ENV, AgentRuntimeConfig
from kubevox_api.contract import HEALTH_PORT, METRICS_PORT

from ..config import load_runtime_config, resolve_config_path
from ..drained_exit import DrainedExit
from ..early_stop import exit_without_finalizing, stop_at_once
from ..errors import ConfigError
from ..pod_annotations import PodCallsAnnotator
from ..providers import check_providers
from ._common import livekit_credentials

if TYPE_CHECKING:
    from ..call_events.background import DeliveryThread

NAME = "start"
HELP = "Run the LiveKit worker for the VoiceAgent in --config / $KUBEVOX_CONFIG."

METRICS_PORT_ENV = "KUBEVOX_METRICS_PORT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="rendered runtime config (default: $KUBEVOX_CONFIG)")
    parser.add_argument(
        "--health-port",
        type=int,
        default=HEALTH_PORT,
        help=f"LiveKit's health server: / and /worker (default {HEALTH_PORT})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get(METRICS_PORT_ENV, METRICS_PORT)),
        help=f"Prometheus /metrics (default ${METRICS_PORT_ENV} or {METRICS_PORT})",
    )
    parser.add_argument("--log-level", default=os.environ.get("LIVEKIT_LOG_LEVEL", "INFO"))


def preflight(path: str, env: dict[str, str] | os._Environ[str]) -> AgentRuntimeConfig:
    """Config, provider keys and LiveKit credentials: a ConfigError names what is wrong."""
    config = load_runtime_config(path)
    check_providers(config, env)
    livekit_credentials(config, env)
    return config


def private_copy(path: str, directory: Path) -> str:
    """The config this worker checked, copied into ``directory``, where only it writes: every
    job process started during the pod's life reads this copy.

    In a pod the config is a ConfigMap volume, which the kubelet updates in place (a new
    timestamped directory, then the old one removed) when the ConfigMap changes without a
    rollout, e.g. for a spec.web edit. Job processes reading the mounted path would then run
    a config the worker never checked, or, given the resolved path, find no file at all and
    fail to start: the worker would take calls it cannot answer.
    """
    source = Path(path)
    copy = directory / source.name
    try:
        shutil.copyfile(source, copy)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    return str(copy)


def run(args: argparse.Namespace) -> int:
    # A worker stopped before it registered has no call to drain: a clean stop, exit 0 (livekit's
    # handler replaces this one once the worker runs).
    # The worker's own files (the config copy; outside a pod, the metrics files), removed on
    # every way out: a drained exit, a stop before registration, an invalid config. (Not
    # TMPDIR for everything: the job processes' Unix sockets live there, and a path longer than
    # 107 bytes cannot be bound.)
    own = Path(tempfile.mkdtemp(prefix="kubevox-worker-"))
    stop_at_once(0, before_exit=lambda: _remove(own))
    try:
        path = private_copy(resolve_config_path(args.config), own)
        config = preflight(path, os.environ)
    except BaseException:
        _remove(own)
        raise

    # Job processes read the config themselves, and write their metrics to files the parent
    # aggregates: both must be in the environment before the first process is started.
    os.environ[CONFIG_ENV] = path
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(own / "metrics"))
    # In a pod it names a directory inside an emptyDir (the operator's pod spec), which starts
    # empty: the directory is ours to make.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker
    from prometheus_client import start_http_server

    from .. import analysis, metrics, recording, worker
    from ..call_events.background import DeliveryThread
    from ..callrecord import worker_name

    load = worker.worker_load(config)
    server = worker.make_server(config, load, health_port=args.health_port)
    parent = metrics.ParentCollector(
        config.name,
        config.namespace,
        active_calls=lambda: worker.active_calls(server),
        load=lambda: load.value,
        registered=lambda: server.id not in ("", "unregistered"),
    )
    start_http_server(args.metrics_port, registry=metrics.scrape_registry(parent))
    annotator = PodCallsAnnotator.in_cluster()
    if annotator is not None:  # scale-down spares pods with live calls; KEDA counts them
        annotator.start(lambda: worker.active_dispatches(server))
    # Call events (spec.callEvents): this worker also takes its agent's outbox to the sinks,
    # and analyses the calls in it (spec.analysis).
    delivery = analysis.build_delivery(config, os.environ, consumer=worker_name())
    # Recordings (spec.recording) whose upload failed at their call's end wait in the spool.
    spooled = recording.spool_uploads(config, os.environ)
    deliveries = [DeliveryThread(d) for d in (delivery, spooled) if d is not None]
    for thread in deliveries:
        thread.start()
    # If livekit's shutdown hangs once the calls are over, leave anyway (drained_exit.py).
    leave = functools.partial(_leave, own, deliveries)
    DrainedExit(lambda: server.draining, lambda: worker.active_calls(server)).watch(leave)
    # livekit's production loop: JSON logs, SIGTERM -> drain(drain_timeout) -> exit 0.
    _run_worker(server, proto.CliArgs(log_level=args.log_level, log_format="json"))
    # Drained: every call has ended and livekit has closed its job processes.
    leave()
    return 0  # not reached


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _leave(own: Path, deliveries: Sequence[DeliveryThread] = ()) -> None:
    """Remove the worker's own files, then exit 0 without the interpreter's finalization: a
    drained pod was seen exiting 139 (SIGSEGV) after its last call, which reads as a failed
    drain. The deliveries get a few seconds first: the call events' (its last calls' events;
    what it leaves, another worker takes) and the spooled recordings' (a last try)."""
    for thread in deliveries:
        thread.stop()
    _remove(own)
    exit_without_finalizing(0)
