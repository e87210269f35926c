"""The worker keeps its own pod's annotations equal to its active calls.

``controller.kubernetes.io/pod-deletion-cost`` makes a scale-down remove idle pods before pods
with live calls; ``kubevox.dev/active-calls`` is what the operator sums into the VoiceAgent's
``status.activeCalls`` and into the calls the KEDA query scales on; ``kubevox.dev/dispatches``
names the LiveKit dispatches of those calls, so that the operator stops counting a call as
waiting the moment a worker holds it. The worker knows the moment a call starts or ends, so it
writes them itself (see docs/operator.md), with RBAC limited to get/patch pods in its namespace
and an admission policy limiting it to these annotations of its own pod.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kubevox_api.contract import (
    ACTIVE_CALLS_ANNOTATION,
    DELETION_COST_ANNOTATION,
    DISPATCHES_ANNOTATION,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
)

log = logging.getLogger("kubevox.pod")


class PodCallsAnnotator:
    """Patches the pod's annotations when, and only when, its calls change."""

    def __init__(self, core_api: Any, pod: str, namespace: str) -> None:
        self._api = core_api
        self.pod = pod
        self.namespace = namespace
        self._written: tuple[int, str] | None = None
        self._failing = False

    @classmethod
    def in_cluster(cls) -> PodCallsAnnotator | None:
        """From the downward-API variables; None outside Kubernetes (local runs, tests)."""
        pod, namespace = os.environ.get(POD_NAME_ENV), os.environ.get(POD_NAMESPACE_ENV)
        if not pod or not namespace:
            return None
        from kubernetes import client, config

        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return cls(client.CoreV1Api(), pod, namespace)

    def update(self, calls: int, dispatches: Sequence[str] = ()) -> bool:
        """Write ``calls`` and their ``dispatches`` if they differ from what was last written;
        True when it wrote."""
        state = (calls, ",".join(sorted(d for d in dispatches if d)))
        if state == self._written:
            return False
        body = {
            "metadata": {
                "annotations": {
                    DELETION_COST_ANNOTATION: str(calls),
                    ACTIVE_CALLS_ANNOTATION: str(calls),
                    DISPATCHES_ANNOTATION: state[1],
                }
            }
        }
        try:
            self._api.patch_namespaced_pod(self.pod, self.namespace, body)
        except Exception as e:
            if not self._failing:  # once per outage, not every second
                log.warning("cannot annotate the worker pod", extra={"error": repr(e)})
                self._failing = True
            return False
        if self._failing:
            log.info("worker pod annotations writable again")
            self._failing = False
        self._written = state
        return True

    def follow(
        self, jobs: Callable[[], Sequence[str]], stop: threading.Event, period: float = 0.5
    ) -> None:
        """Keep the annotations in step with ``jobs`` (the dispatch id of each call in progress)
        until ``stop`` is set (run in a daemon thread)."""
        while not stop.is_set():
            dispatches = jobs()
            self.update(len(dispatches), dispatches)
            stop.wait(period)

    def start(self, jobs: Callable[[], Sequence[str]]) -> threading.Event:
        stop = threading.Event()
        threading.Thread(
            target=self.follow, args=(jobs, stop), name="pod-annotations", daemon=True
        ).start()
        return stop
