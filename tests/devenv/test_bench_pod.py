"""The capacity bench's worker pod (bench/_node_worker.py): the operator's own Deployment and
ConfigMap for the bench's agent, runnable without the operator or a VoiceAgent object, and
sized so that kubelet's static CPU manager gives it cores of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import KnowledgeBase
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.nodenet import NODE_IP

from tests.support.voice import sample_agent, sample_docs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _node_worker as nw

IMAGE = "kubevox.local/agent-runtime:0123456789abcdef"


def _objects(cpus: float) -> list[dict[str, Any]]:
    livekit = LiveKitServer(workdir=Path("unused"), host=NODE_IP)  # its URL and keys
    _, kb_doc = sample_docs()
    kb_doc["metadata"]["namespace"] = nw.NAMESPACE
    kb = KnowledgeBase.model_validate(kb_doc)
    llm = nw.with_credentials({"provider": "openai", "model": "bench", "baseURL": "http://x"})
    agent = sample_agent(llm, agentName="capacity-cloud", **nw.pod_spec_fields(livekit, cpus))
    return nw.worker_objects(agent, kb, IMAGE, {"KUBEVOX_CPU_LOAD_WEIGHT": "0"})


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_operators_deployment_and_config_without_an_owner() -> None:
    objects = _objects(1)
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment"]
    assert all("ownerReferences" not in o["metadata"] for o in objects)
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": config["metadata"]["name"]} in [v.get("configMap") for v in volumes]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "default"


def test_the_worker_reaches_the_hosts_livekit_with_the_bench_environment() -> None:
    container = _container(_objects(1))
    env = {e["name"]: e for e in container["env"]}
    assert env["LIVEKIT_URL"]["value"].startswith(f"ws://{NODE_IP}:")
    assert env["KUBEVOX_CPU_LOAD_WEIGHT"]["value"] == "0"
    assert container["image"] == IMAGE
    secret_names = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in env.values()
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert secret_names == {nw.LIVEKIT_SECRET, nw.REDIS_SECRET, nw.KEYS_SECRET}


@pytest.mark.parametrize(("cpus", "cpu"), [(1, "1"), (2, "2"), (0.5, "500m")])
def test_the_pod_is_guaranteed_whole_cores_when_asked(cpus: float, cpu: str) -> None:
    resources = _container(_objects(cpus))["resources"]
    assert resources["requests"] == resources["limits"]
    assert resources["limits"] == {"cpu": cpu, "memory": nw.POD_MEMORY}
