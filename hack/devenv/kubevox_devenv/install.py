"""``make install``: kubevox on the local node the way a platform team installs it — the
project's Helm chart with the images built here — and the in-cluster dependencies a user would
already run: a LiveKit server, Redis with vector search, Prometheus (manifests/dev) and KEDA
(its own manifests) to scale workers on active calls, each a real program in a pod, from an
image built the same way.

    python -m kubevox_devenv.install --dir .kubevox
    python -m kubevox_devenv.install --dir .kubevox dev-secrets --namespace team-a

``dev-secrets`` writes, in any namespace, the Secrets the samples reference
(``livekit-credentials``, ``redis``) pointing at these in-cluster dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from kubevox_api.contract import METRICS_PORT

from . import images as imagesmod
from .controlplane import REPO, SERVICE_CIDR
from .nodenet import POD_CIDR
from .procs import built
from .worker import registered_in, scrape

if TYPE_CHECKING:
    from agent_runtime.caller import CallOptions

NAMESPACE = "kubevox-system"
CHART = REPO / "manifests" / "helm" / "kubevox"
DEPENDENCIES = REPO / "manifests" / "dev"
HELM_SCRIPT = REPO / "hack" / "tools" / "build-helm.sh"
THIRD_PARTY_SCRIPT = REPO / "hack" / "tools" / "fetch-third-party.sh"
DEPENDENCY_DEPLOYMENTS = (
    ("livekit", "livekit"),
    ("redis", "redis"),
    ("monitoring", "prometheus"),
    ("keda", "keda-operator"),
    ("keda", "keda-metrics-apiserver"),
)
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"  # served by KEDA
PROMETHEUS_URL = "http://prometheus.monitoring.svc.cluster.local:9090"
LIVEKIT_URL = "ws://livekit.livekit.svc.cluster.local:7880"
REDIS_URL = "redis://redis.redis.svc.cluster.local:6379/0"
# LiveKit's API key name; the secret is random per cluster (install/livekit-keys.json).
LIVEKIT_KEY = "kubevox-dev"


class InstallError(RuntimeError):
    """A step of the install failed; the message names it and carries the tool's output."""


@dataclass(frozen=True)
class Kube:
    """kubectl against the local cluster (``make cluster-up``'s kubeconfig)."""

    kubectl: Path
    kubeconfig: Path

    @classmethod
    def of(cls, directory: Path) -> Kube:
        kubeconfig = directory / "kubeconfig"
        if not kubeconfig.exists():
            raise InstallError(f"no cluster: {kubeconfig} is missing (run make cluster-up)")
        return cls(directory / "kubectl", kubeconfig)

    def run(self, *args: str, input: str | None = None, timeout: float = 300) -> str:
        argv = [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise InstallError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, objects: list[dict[str, object]]) -> None:
        docs = yaml.safe_dump_all(objects, sort_keys=False)
        self.run("apply", "--server-side", "--force-conflicts", "-f", "-", input=docs)


def livekit_keys(directory: Path) -> tuple[str, str]:
    """The LiveKit API key and secret of this cluster: made once, kept beside its kubeconfig."""
    path = directory / "install" / "livekit-keys.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps({LIVEKIT_KEY: secrets.token_urlsafe(32)}))
    ((key, secret),) = json.loads(path.read_text()).items()
    return key, secret


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": data,
    }


def dev_secrets(kube: Kube, namespace: str, keys: tuple[str, str]) -> None:
    """The Secrets the samples reference, pointing at the in-cluster dependencies."""
    kube.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            secret("livekit-credentials", namespace, {"apiKey": keys[0], "apiSecret": keys[1]}),
            secret("redis", namespace, {"url": REDIS_URL}),
        ]
    )


def keda_manifests() -> Path:
    """KEDA's own install kustomization (config/minimal: CRDs, RBAC, operator, metrics API
    server, without the admission webhooks), from its Go module."""
    return built(THIRD_PARTY_SCRIPT) / "keda-config" / "minimal"


def dependencies_kustomization(
    overlay: Path, built: dict[str, imagesmod.Image]
) -> dict[str, object]:
    """manifests/dev and KEDA's manifests, with the images built here, never pulled."""

    def tag(name: str) -> str:
        return built[name].ref.rpartition(":")[2]

    keda_image = f"{imagesmod.REGISTRY}/keda"
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [
            os.path.relpath(DEPENDENCIES, overlay),
            os.path.relpath(keda_manifests(), overlay),
        ],
        "images": [
            *(
                {"name": f"{imagesmod.REGISTRY}/{name}", "newTag": tag(name)}
                for name in ("livekit-server", "redis-search", "prometheus")
            ),
            # One image holds both KEDA programs (hack/images/keda.Dockerfile).
            {"name": "ghcr.io/kedacore/keda", "newName": keda_image, "newTag": tag("keda")},
            {
                "name": "ghcr.io/kedacore/keda-metrics-apiserver",
                "newName": keda_image,
                "newTag": tag("keda"),
            },
        ],
        # KEDA's manifests say Always: there is no registry to ask.
        "patches": [
            {
                "target": {"kind": "Deployment", "namespace": "keda", "name": name},
                "patch": yaml.safe_dump(
                    [
                        {
                            "op": "replace",
                            "path": "/spec/template/spec/containers/0/imagePullPolicy",
                            "value": "IfNotPresent",
                        }
                    ]
                ),
            }
            for name in ("keda-operator", "keda-metrics-apiserver")
        ],
    }


def install_dependencies(
    kube: Kube, directory: Path, built: dict[str, imagesmod.Image], keys: tuple[str, str]
) -> None:
    """manifests/dev and KEDA with the local image tags (a kustomization of our own over them),
    then the LiveKit keys; waits until every server is ready and KEDA serves external metrics."""
    overlay = directory / "install" / "dependencies"
    overlay.mkdir(parents=True, exist_ok=True)
    kustomization = dependencies_kustomization(overlay, built)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    kube.run("apply", "--server-side", "--force-conflicts", "-k", str(overlay))
    kube.apply([secret("livekit-keys", "livekit", {"keys": f"{keys[0]}: {keys[1]}"})])
    for namespace, name in DEPENDENCY_DEPLOYMENTS:
        kube.run("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=240s")
    kube.run(
        "wait", "--for=condition=Available", f"apiservice/{EXTERNAL_METRICS_API}", "--timeout=120s"
    )


def livekit_host_url(kube: Kube) -> str:
    """LiveKit's Service from the host, as a caller's client reaches it (through kube-proxy)."""
    ip = kube.run("get", "service", "livekit", "-n", "livekit", "-o=jsonpath={.spec.clusterIP}")
    return f"ws://{ip}:7880"


def dispatch_name(kube: Kube, namespace: str, voice_agent: str) -> str:
    """The LiveKit agent name callers dispatch to: the VoiceAgent's status.agentName, or the
    name the operator computes the same way (spec.agentName, else <namespace>.<name>)."""
    from kubevox_api import default_agent_name

    body = json.loads(kube.run("get", "voiceagent", voice_agent, "-n", namespace, "-o=json"))
    status_name = (body.get("status") or {}).get("agentName")
    spec_name = (body.get("spec") or {}).get("agentName")
    return str(status_name or spec_name or default_agent_name(namespace, voice_agent))


def host_caller(kube: Kube, directory: Path, namespace: str, voice_agent: str) -> CallOptions:
    """A simulated caller on the host for VoiceAgent ``namespace/voice_agent``, with this
    cluster's LiveKit keys, and room for a worker that is still loading its offline models."""
    from agent_runtime.caller import CallOptions

    key, secret = livekit_keys(directory)
    return CallOptions(
        url=livekit_host_url(kube),
        api_key=key,
        api_secret=secret,
        agent_name=dispatch_name(kube, namespace, voice_agent),
        greeting_timeout=120.0,
        reply_timeout=90.0,
    )


def worker_registered(pod_ip: str) -> bool:
    """The worker pod at ``pod_ip`` says it is registered with LiveKit (its
    kubevox_worker_registered metric, read from the host). Its readiness probe answers before
    that, and a call placed before registration is never dispatched to it."""
    return registered_in(scrape(pod_ip, METRICS_PORT))


def helm() -> Path:
    try:
        return built(HELM_SCRIPT) / "helm"
    except subprocess.CalledProcessError as e:
        raise InstallError(f"building helm failed ({HELM_SCRIPT.name}, its output above)") from e


def helm_values(built: dict[str, imagesmod.Image]) -> dict[str, object]:
    """The chart's values for the local images: by content tag, never pulled (no registry)."""

    def image(name: str) -> dict[str, str]:
        repository, _, tag = built[name].ref.rpartition(":")
        return {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}

    runtime = image("agent-runtime")
    del runtime["pullPolicy"]
    return {
        "image": image("operator"),
        "runtimeImage": runtime,
        # VoiceAgents with spec.scaling.autoscaler: keda query this Prometheus, and the operator
        # reads canaries' call metrics there.
        "autoscaling": {"prometheusUrl": PROMETHEUS_URL},
        # The node's kubelet syncs every 10 s (nodeconfig.py): a canary's split reaches every
        # pod within it.
        "rollout": {"settleSeconds": 15},
        # The samples' LiveKit is the in-cluster Service: the operator may reach the cluster's
        # own Service and pod ranges (and nothing else internal) for SIP.
        "livekit": {"allowedCIDRs": [SERVICE_CIDR, POD_CIDR]},
    }


def install_kubevox(kube: Kube, directory: Path, built: dict[str, imagesmod.Image]) -> None:
    values = directory / "install" / "values.yaml"
    values.write_text(yaml.safe_dump(helm_values(built), sort_keys=False))
    argv = [
        str(helm()),
        f"--kubeconfig={kube.kubeconfig}",
        "upgrade", "--install", "kubevox", str(CHART),
        "--namespace", NAMESPACE, "--create-namespace",
        "--values", str(values),
        "--wait", "--timeout", "5m",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise InstallError(f"helm upgrade --install kubevox failed: {proc.stderr.strip()}")


def install(
    kube: Kube, workdir: Path, containerd: tuple[Path, str] | None
) -> dict[str, imagesmod.Image]:
    """Everything ``make install`` does, with its files under ``workdir`` and the images loaded
    into ``containerd`` (socket, snapshotter); returns the images it installed."""
    built = imagesmod.build_images((*imagesmod.IMAGES, *imagesmod.DEPENDENCIES))
    if containerd is not None:
        imagesmod.load_images(built, *containerd)
    keys = livekit_keys(workdir)
    install_dependencies(kube, workdir, built, keys)
    install_kubevox(kube, workdir, built)
    return built


def node_containerd(directory: Path) -> tuple[Path, str]:
    """The containerd of make cluster-up's node: where the images must go."""
    from .cluster import running_node

    node = running_node(directory)
    if node is None:
        raise InstallError(f"no node runs from {directory}: make cluster-up on a machine that can")
    return Path(str(node["containerd"])), str(node["snapshotter"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubevox_devenv.install")
    parser.add_argument("--dir", type=Path, default=Path(".kubevox"))
    sub = parser.add_subparsers(dest="command")
    secrets_cmd = sub.add_parser("dev-secrets", help="the samples' Secrets in a namespace")
    secrets_cmd.add_argument("--namespace", "-n", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "dev-secrets":
            dev_secrets(Kube.of(args.dir), args.namespace, livekit_keys(args.dir))
            print(f"livekit-credentials and redis written in namespace {args.namespace}")
            return 0
        kube = Kube.of(args.dir)
        built = install(kube, args.dir, node_containerd(args.dir))
    except (InstallError, imagesmod.ImagesUnavailable) as e:
        print(f"install: {e}", file=sys.stderr)
        return 1
    for image in built.values():
        print(f"installed {image.ref}")
    print(f"kubevox installed in {NAMESPACE}; LiveKit at {LIVEKIT_URL}, Redis at {REDIS_URL}")
    print(f"Prometheus at {PROMETHEUS_URL}; KEDA serves {EXTERNAL_METRICS_API}")
    # The host sits on the pods' bridge and runs kube-proxy: Service and pod addresses reach.
    print(
        "Try: make dev-secrets NS=demo, apply manifests/samples/offline-agent.yaml in demo, and\n"
        f"  call it from this machine: LIVEKIT_URL={livekit_host_url(kube)} "
        f"LIVEKIT_API_KEY={LIVEKIT_KEY} LIVEKIT_API_SECRET=<{args.dir}/install/livekit-keys.json> "
        "kubevox-agent call --agent demo.offline --say 'When is the clinic open?'"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
