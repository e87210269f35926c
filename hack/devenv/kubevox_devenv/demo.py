"""`make run`: kubevox on an embedded local control plane.

Starts (or reuses) the control plane of `make cluster-up`, installs the CRDs, applies the samples
and shows what a platform team sees with kubectl. The control plane keeps running afterwards so
the objects can be explored; `make cluster-down` stops it.
"""

from __future__ import annotations

import subprocess
import sys

from .controlplane import REPO, up

STATE = REPO / ".kubevox"
NAMESPACE = "kubevox-demo"


def _step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def kubectl(*args: str, check: bool = True, show: bool = True) -> str:
    argv = [str(STATE / "kubectl"), f"--kubeconfig={STATE / 'kubeconfig'}", *args]
    if show:
        print(f"$ kubectl {' '.join(args)}", flush=True)
    out = subprocess.run(argv, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"kubectl {' '.join(args)} failed")
    text = out.stdout if out.returncode == 0 else out.stderr
    if show:
        print(text.rstrip(), flush=True)
    return text


def main() -> int:
    _step("Local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)")
    up(STATE, crds=False)

    _step("Install the kubevox CRDs, generated from the pydantic models")
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/voiceagents.kubevox.dev",
        "crd/knowledgebases.kubevox.dev",
    )

    _step("Apply the samples (manifests/samples)")
    kubectl("create", "namespace", NAMESPACE, check=False, show=False)
    kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "manifests" / "samples"))

    _step("A bad VoiceAgent is refused at admission, naming the field")
    bad = (REPO / "manifests" / "samples" / "offline-agent.yaml").read_text().split("---")[0]
    bad = bad.replace("name: offline", "name: too-small").replace(
        "minReplicas: 1", "minReplicas: 5"
    )
    print("$ kubectl apply -f - (the offline sample with scaling.minReplicas: 5 > maxReplicas: 4)")
    out = subprocess.run(
        [
            str(STATE / "kubectl"),
            f"--kubeconfig={STATE / 'kubeconfig'}",
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            "-",
        ],
        input=bad,
        capture_output=True,
        text=True,
    )
    print((out.stderr or out.stdout).rstrip())

    _step("What a platform team sees")
    kubectl("get", "voiceagents,knowledgebases", "-n", NAMESPACE)
    kubectl("explain", "voiceagent.spec.scaling.maxCallsPerPod")

    kubeconfig = (STATE / "kubeconfig").resolve()
    print(
        f"\nThe control plane keeps running. Explore it with:\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  .kubevox/kubectl get kubevox -A\n"
        f"Stop it with: make cluster-down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
