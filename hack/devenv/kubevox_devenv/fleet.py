"""A VoiceAgent's worker pods on the local node, as the system test, the node demo and the
benchmark watch them: which pods are live, which have registered with LiveKit, how many calls
each holds, and how many replicas the autoscaler asks for."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubevox_api import contract

from .install import Kube, worker_registered

SAMPLE = Path(__file__).resolve().parents[3] / "manifests" / "samples" / "offline-agent.yaml"


def sample_for_this_node(sample: Path = SAMPLE) -> str:
    """The offline sample, scaled by KEDA (which `make install` runs) and sized for a 2-core
    node: three workers must fit beside LiveKit, Redis, Prometheus and KEDA. Scale-down waits
    15 s instead of 10 min and a draining worker gives its calls 5 min, so a demo is short; held
    calls may stay silent for an hour."""
    docs = list(yaml.safe_load_all(sample.read_text()))
    agent = next(d for d in docs if d["kind"] == contract.VOICE_AGENT_KIND)
    agent["spec"]["scaling"].update(
        autoscaler="keda", maxReplicas=3, scaleDownStabilizationSeconds=15
    )
    # Requests that let three workers fit; the memory limit is left to the operator, which
    # sizes it for the sample's maxCallsPerPod (kubevox_api/sizing.py): a worker whose working
    # set nears it takes no new call, so the node's calls prove the sizing holds them.
    agent["spec"]["resources"] = {"requests": {"cpu": "200m", "memory": "1Gi"}}
    agent["spec"]["drainTimeoutSeconds"] = 300
    # The demo's and the system tests' held calls stay silent while the fleet scales and rolls
    # (minutes): the default silence timeout (30 s) would hang up on them.
    agent["spec"]["silenceTimeoutSeconds"] = 3600
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass(frozen=True)
class Fleet:
    kube: Kube
    namespace: str
    agent: str

    def pods(self) -> list[dict[str, Any]]:
        """The agent's worker pods that are not being deleted."""
        selector = f"{contract.LABEL_VOICE_AGENT}={self.agent}"
        items = json.loads(
            self.kube.run("get", "pods", "-n", self.namespace, "-l", selector, "-o=json")
        )["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def calls_by_pod(self) -> dict[str, int]:
        """What each live pod reports in its active-calls annotation (-1: nothing yet)."""
        return {
            p["metadata"]["name"]: int(
                (p["metadata"].get("annotations") or {}).get(contract.ACTIVE_CALLS_ANNOTATION, -1)
            )
            for p in self.pods()
        }

    def registered(self) -> list[str]:
        """Live pods registered with LiveKit: the ones it can give calls to."""
        out = []
        for pod in self.pods():
            ip = pod["status"].get("podIP")
            with contextlib.suppress(OSError):
                if ip and worker_registered(ip):
                    out.append(pod["metadata"]["name"])
        return out

    def replicas(self) -> int:
        """What the autoscaler asks of the worker Deployment."""
        dep = json.loads(
            self.kube.run("get", "deployment", self.agent, "-n", self.namespace, "-o=json")
        )
        return int(dep["spec"].get("replicas", 0))

    def status(self) -> dict[str, Any]:
        agent = json.loads(
            self.kube.run("get", "voiceagent", self.agent, "-n", self.namespace, "-o=json")
        )
        return dict(agent.get("status") or {})
