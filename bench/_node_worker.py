"""A capacity run's worker as a pod of the real node (``bench/capacity.py --node``, issue 20).

The pod is the one the operator makes: the worker Deployment and its ConfigMap come from the
operator's own builders for the bench's VoiceAgent, applied to a fresh local cluster
(kubevox_devenv.cluster) whose kubelet runs the static CPU manager. A Guaranteed pod asking
whole cores then gets cores of its own, away from everything else. Its CPU and memory are read
from the cgroups kubelet made for it, its log from kubelet's pod log, its calls from its
/metrics.

Redis, LiveKit, the provider stand-ins and the callers stay on the host, on the other cores,
serving on the node's address (nodenet.NODE_IP), which the pod reaches.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubevox_api import KnowledgeBase, VoiceAgent
from kubevox_api.contract import METRICS_PORT
from kubevox_devenv import images as imagesmod
from kubevox_devenv.cgroup import Cgroups, kubelet_pod
from kubevox_devenv.cluster import temporary_cluster
from kubevox_devenv.install import Kube, secret, worker_registered
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.nodenet import NODE_IP
from kubevox_devenv.worker import active_calls_in, scrape
from kubevox_operator.builders.agent import OperatorDefaults, build_agent_children
from kubevox_operator.builders.common import agent_name, child_name

Obj = dict[str, Any]

NAMESPACE = "e2e"  # the sample knowledge base's (tests/support/voice.py)
LIVEKIT_SECRET = "livekit-credentials"
REDIS_SECRET = "redis"  # the sample knowledge base's spec.store.redisUrlSecretRef
KEYS_SECRET = "bench"  # the stand-in providers' API keys (any value), as v.cloud_spec names it
POD_MEMORY = "8Gi"  # enough never to be what limits a run: memory is measured, not capped

_OWNER = {"kind": "VoiceAgent", "metadata": {"name": "bench", "uid": "bench"}}


def pod_spec_fields(livekit: LiveKitServer, cpus: float) -> dict[str, Any]:
    """What the bench's VoiceAgent adds to the sample's to run as a pod here: LiveKit on the
    host, Guaranteed resources of ``cpus`` cores, the namespace's default ServiceAccount."""
    cpu = str(int(cpus)) if float(cpus).is_integer() else f"{round(cpus * 1000)}m"
    size = {"cpu": cpu, "memory": POD_MEMORY}
    return {
        "livekit": {"url": livekit.url, "credentialsSecretRef": {"name": LIVEKIT_SECRET}},
        "resources": {"requests": size, "limits": size},
        "pod": {"serviceAccountName": "default"},
    }


def with_credentials(llm: dict[str, Any]) -> dict[str, Any]:
    """A cloud language model's spec with its key from the bench's Secret (a worker process
    on the host has it in its environment instead; the stand-ins take any key)."""
    if llm["provider"] == "local":
        return llm
    return llm | {"credentials": {"secretKeyRef": {"name": KEYS_SECRET, "key": "openai"}}}


def worker_objects(
    agent: VoiceAgent, kb: KnowledgeBase, image: str, env: dict[str, str]
) -> list[Obj]:
    """The ConfigMap and worker Deployment the operator makes for ``agent``, ``env`` added to
    the worker's. Without owner: no VoiceAgent object exists here, and the garbage collector
    would remove what names a missing owner."""
    children = build_agent_children(
        agent, _OWNER, {kb.metadata["name"]: kb}, OperatorDefaults(image=image)
    )
    wanted = {
        ("ConfigMap", child_name(agent_name(agent), "-config")),
        ("Deployment", child_name(agent_name(agent))),
    }
    kept = [o for o in children.objects if (o["kind"], o["metadata"]["name"]) in wanted]
    assert len(kept) == len(wanted), f"the builders made no {wanted}"
    for o in kept:
        del o["metadata"]["ownerReferences"]
    (deployment,) = [o for o in kept if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["env"] += [{"name": k, "value": v} for k, v in env.items()]
    return kept


def secrets(livekit: LiveKitServer, redis_url: str) -> list[Obj]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        secret(
            LIVEKIT_SECRET,
            NAMESPACE,
            {"apiKey": livekit.api_key, "apiSecret": livekit.api_secret},
        ),
        secret(REDIS_SECRET, NAMESPACE, {"url": redis_url}),
        secret(KEYS_SECRET, NAMESPACE, {k: "bench" for k in ("deepgram", "cartesia", "openai")}),
    ]


@dataclass
class PodWorker:
    """The worker pod of one capacity run: what bench/capacity.py reads of a worker (its log,
    its active calls) and its pod's cgroups."""

    kube: Kube
    pod_logs: Path  # kubelet's podLogsDir
    objects: list[Obj]
    uid: str = ""
    ip: str = ""

    @property
    def deployment(self) -> Obj:
        return next(o for o in self.objects if o["kind"] == "Deployment")

    def start(self, timeout: float = 300) -> PodWorker:
        """Apply, then wait until the pod runs and its worker has registered with LiveKit."""
        self.kube.apply(self.objects)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self._pod()
            if pod and pod["status"].get("podIP"):
                self.uid, self.ip = pod["metadata"]["uid"], pod["status"]["podIP"]
                with contextlib.suppress(OSError):
                    if worker_registered(self.ip):
                        return self
            time.sleep(1)
        events = self.kube.run("get", "events", f"-n={NAMESPACE}", "--sort-by=.lastTimestamp")
        raise TimeoutError(f"the worker pod did not register within {timeout:.0f} s:\n{events}")

    def _pod(self) -> Obj | None:
        labels = self.deployment["spec"]["selector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        out = self.kube.run("get", "pods", f"-n={NAMESPACE}", f"-l={selector}", "-o=json")
        pods = [p for p in json.loads(out)["items"] if "deletionTimestamp" not in p["metadata"]]
        return pods[0] if pods else None

    @property
    def log(self) -> Path:
        """The worker container's log, as kubelet writes it (a CRI prefix on each line)."""
        (found,) = self.pod_logs.glob(f"{NAMESPACE}_*_{self.uid}/agent/0.log")
        return found

    def active_calls(self) -> int:
        return active_calls_in(scrape(self.ip, METRICS_PORT))

    def cgroups(self) -> Cgroups:
        return kubelet_pod(self.uid)

    def cores(self) -> set[int]:
        """The cores the worker container's processes may run on (the static CPU manager's
        choice; the pod's sandbox, its pause process, stays on the shared cores)."""
        pids = [
            p for p in self.cgroups().pids() if Path(f"/proc/{p}/comm").read_text() != "pause\n"
        ]
        return {c for pid in pids for c in os.sched_getaffinity(pid)}

    def stop(self) -> None:
        name = self.deployment["metadata"]["name"]
        self.kube.run("delete", "deployment", name, f"-n={NAMESPACE}", "--wait=true")
        deadline = time.monotonic() + 120
        while self._pod_exists() and time.monotonic() < deadline:
            time.sleep(1)

    def _pod_exists(self) -> bool:
        out = self.kube.run("get", "pods", f"-n={NAMESPACE}", "-o=name")
        return bool(out.strip())


@dataclass(frozen=True)
class Cluster:
    """The bench's cluster: kubectl, kubelet's pod logs, the worker image loaded there."""

    kube: Kube
    pod_logs: Path
    image: str
    host: str = NODE_IP  # where the host's services serve for the pods

    @contextlib.contextmanager
    def worker(
        self, agent: VoiceAgent, kb: KnowledgeBase, env: dict[str, str], support: set[int]
    ) -> Iterator[tuple[PodWorker, Cgroups]]:
        """The worker pod of ``agent``, running and registered; removed on exit. A pod given
        whole cores that still runs on the callers' would measure nothing: that is an error,
        not a result (with a fraction of a core, kubelet shares every core but the ones it
        gave away)."""
        objects = worker_objects(agent, kb, self.image, env)
        worker = PodWorker(self.kube, self.pod_logs, objects).start()
        try:
            cores = worker.cores()
            print(f"the worker pod runs on cores {sorted(cores)}", flush=True)
            whole = str(agent.spec.resources.limits.cpu).isdigit()  # pod_spec_fields' cores
            if cores & support and whole:
                raise RuntimeError(f"the worker pod shares the callers' cores: {cores}")
            yield worker, worker.cgroups()
        finally:
            worker.stop()


@contextlib.contextmanager
def cluster(support: set[int]) -> Iterator[Cluster]:
    """A fresh control plane and node whose kubelet gives Guaranteed pods cores of their own,
    the worker image built (cached) and loaded. Its first core, which kubelet keeps for itself
    and the other pods, must be among ``support`` (the callers' cores): Cluster.worker checks
    that the pod's cores are not."""
    assert 0 in support, "kubelet keeps core 0 for itself: the callers' cores must include it"
    (image,) = imagesmod.build_images(("agent-runtime",)).values()
    with temporary_cluster("kubevox-capacity-", exclusive_cpus=True) as (plane, node):
        imagesmod.load_images({"agent-runtime": image}, node.socket, node.snapshotter)
        yield Cluster(Kube(plane.kubectl, plane.kubeconfig), node.dir / "pod-logs", image.ref)
