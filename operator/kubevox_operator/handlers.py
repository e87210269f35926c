"""kopf wiring: watches feed the controller's cache and queue; nothing here writes.

Only ``on.event`` handlers are used, so kopf itself never patches a VoiceAgent (no progress
annotations, no kopf finalizers: children are garbage-collected through their owner references;
the controller's own ``kubevox.dev/sip`` finalizer is only on VoiceAgents with telephony).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from . import contract
from .controller import Controller
from .kube import Kube

log = logging.getLogger("kubevox.handlers")

OWNED = {
    "ConfigMap": ("", "v1", "configmaps"),
    "ServiceAccount": ("", "v1", "serviceaccounts"),
    "Service": ("", "v1", "services"),
    "Pod": ("", "v1", "pods"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "Deployment": ("apps", "v1", "deployments"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
    "Job": ("batch", "v1", "jobs"),
}
PRIMARY = {
    "VoiceAgent": ("kubevox.dev", "v1alpha1", "voiceagents"),
    "KnowledgeBase": ("kubevox.dev", "v1alpha1", "knowledgebases"),
}
MANAGED_SELECTOR = f"{contract.LABEL_MANAGED_BY}={contract.MANAGED_BY}"


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    def watcher(kind: str) -> Any:
        async def on_event(event: kopf.RawEvent, **_: Any) -> None:
            controller.observe(kind, event.get("type"), dict(event["object"]))

        on_event.__name__ = f"watch_{kind}"
        return on_event

    for kind, (group, version, plural) in {**PRIMARY, **OWNED}.items():
        kopf.on.event(group, version, plural, registry=registry, id=f"watch-{kind}")(watcher(kind))

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Only the operator's own children are streamed (server-side selector), not every Pod.
        for group, version, plural in OWNED.values():
            settings.watching.label_selectors[group, version, plural] = MANAGED_SELECTOR
        settings.posting.enabled = False  # our own Events, for transitions only
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60
        controller.start()

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is None:
            info = kopf.login_via_client(**kwargs)
        if info is not None and controller.kube is None:
            await controller.connect(Kube(info))
        return info

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        log.info("shutting down")
        await controller.stop()
