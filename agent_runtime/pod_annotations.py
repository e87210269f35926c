"""The worker keeps its own pod's annotations equal to its active calls.

``controller.kubernetes.io/pod-deletion-cost`` makes a scale-down remove idle pods before pods
with live calls; ``kubevox.dev/active-calls`` is what the operator sums into the VoiceAgent's
``status.activeCalls``. The worker knows the moment a call starts or ends, so it writes them
itself (see docs/operator.md), with RBAC limited to get/patch pods in its namespace.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from kubevox_api.contract import (
    ACTIVE_CALLS_ANNOTATION,
    DELETION_COST_ANNOTATION,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
)

log = logging.getLogger("kubevox.pod")


class PodCallsAnnotator:
    """Patches the pod's two annotations when, and only when, the number of calls changes."""

    def __init__(self, core_api: Any, pod: str, namespace: str) -> None:
        self._api = core_api
        self.pod = pod
        self.namespace = namespace
        self._written: int | None = None
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

    def update(self, calls: int) -> bool:
        """Write ``calls`` if it differs from what was last written; True when it wrote."""
        if calls == self._written:
            return False
        body = {
            "metadata": {
                "annotations": {
                    DELETION_COST_ANNOTATION: str(calls),
                    ACTIVE_CALLS_ANNOTATION: str(calls),
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
        self._written = calls
        return True

    def follow(
        self, active_calls: Callable[[], int], stop: threading.Event, period: float = 0.5
    ) -> None:
        """Keep the annotations in step until ``stop`` is set (run in a daemon thread)."""
        while not stop.is_set():
            self.update(active_calls())
            stop.wait(period)

    def start(self, active_calls: Callable[[], int]) -> threading.Event:
        stop = threading.Event()
        threading.Thread(
            target=self.follow, args=(active_calls, stop), name="pod-annotations", daemon=True
        ).start()
        return stop
