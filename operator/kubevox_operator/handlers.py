"""kopf wiring: watches feed the controller's cache and queue; nothing here writes.

Only ``on.event`` handlers are used, so kopf itself never patches a VoiceAgent (no progress
annotations, no kopf finalizers: children are garbage-collected through their owner references;
the controller's own ``kubevox.dev/sip`` finalizer is only on VoiceAgents with telephony).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubevox_api import contract

from .controller import Controller
from .intake import OPTIONAL_CRDS
from .kube import MANAGED_SELECTOR, WATCH_TIMEOUT_SECONDS, Kube
from .store import LISTED_KINDS

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
    "CronJob": ("batch", "v1", "cronjobs"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    # ServiceMonitor and ScaledObject, whose CRDs may come and go, are watched by the
    # operator itself (optional_watch.py); only their CRDs are watched here.
}
PRIMARY = {
    contract.VOICE_AGENT_KIND: ("kubevox.dev", "v1alpha1", "voiceagents"),
    contract.KNOWLEDGE_BASE_KIND: ("kubevox.dev", "v1alpha1", "knowledgebases"),
    contract.VOICE_AGENT_TEST_KIND: ("kubevox.dev", "v1alpha1", "voiceagenttests"),
}


class NoDiffBase(kopf.DiffBaseStorage):
    """With only event and index handlers kopf never reads a diff base; the default one deep-
    copies every body on every event (the largest CPU cost of a creation burst)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """No handler of this operator has progress to keep (see NoDiffBase)."""

    def fetch(self, *, key: Any, body: kopf.Body) -> None:
        return None

    def store(self, *, key: Any, record: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    def watcher(kind: str) -> Any:
        async def on_event(event: kopf.RawEvent, **_: Any) -> None:
            controller.observe(kind, event.get("type"), dict(event["object"]))

        on_event.__name__ = f"watch_{kind}"
        return on_event

    def lister(kind: str) -> Any:
        # async: kopf runs a plain function in its thread pool, a hop per event for nothing.
        async def index(body: kopf.Body, **_: Any) -> None:
            # kopf runs no handler before every index is listed: before any reconcile, the
            # cache holds all children (a miss then means "absent", no GET needed). Nothing
            # is stored in kopf's own index.
            controller.cache.put(kind, dict(body))

        index.__name__ = f"list_{kind}"
        return index

    for kind, (group, version, plural) in {**PRIMARY, **OWNED}.items():
        kopf.on.event(group, version, plural, registry=registry, id=f"watch-{kind}")(watcher(kind))
        if kind in LISTED_KINDS:
            kopf.index(
                group,
                version,
                plural,
                registry=registry,
                id=f"list-{kind}",
                # Only the initial listing fills the cache through here; afterwards the filter
                # spares kopf a handler invocation per event (9 % of a burst's profile).
                when=lambda **_: not controller.synced.is_set(),
            )(lister(kind))

    async def on_crd(event: kopf.RawEvent, **_: Any) -> None:
        controller.observe_crd(event.get("type"), dict(event["object"]))

    for crd, kind in OPTIONAL_CRDS.items():
        kopf.on.event(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            field="metadata.name",
            value=crd,
            registry=registry,
            id=f"watch-crd-{kind}",
        )(on_crd)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Only the operator's own children are streamed (server-side selector), not every Pod.
        for group, version, plural in OWNED.values():
            settings.watching.label_selectors[group, version, plural] = MANAGED_SELECTOR
        settings.posting.enabled = False  # our own Events, for transitions only
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.persistence.progress_storage = NoProgress()
        settings.watching.server_timeout = WATCH_TIMEOUT_SECONDS
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
