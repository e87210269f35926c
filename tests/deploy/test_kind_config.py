"""kind-config.yaml (kind cannot run here: no container engine) is a well-formed kind Cluster
for the Kubernetes minor version the tests prove the manifests against, and the ports the README
promises are mapped onto NodePorts a Service can use."""

from __future__ import annotations

import re

import yaml

from tests.support.tools import REPO


def test_kind_config_matches_the_tested_kubernetes() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert {n["role"] for n in config["nodes"]} == {"control-plane", "worker"}
    gomod = (REPO / "hack" / "controlplane" / "go.mod").read_text()
    tested = re.search(r"k8s\.io/kubernetes v1\.(\d+)\.", gomod)
    assert tested
    for node in config["nodes"]:
        image = re.fullmatch(r"kindest/node:v1\.(\d+)\.\d+(@sha256:[0-9a-f]{64})?", node["image"])
        assert image, node["image"]
        assert image.group(1) == tested.group(1)
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {(m["hostPort"], m["protocol"]) for m in mappings} >= {
        (7880, "TCP"),
        (7881, "TCP"),
        (7882, "UDP"),
    }
    for m in mappings:
        assert 30000 <= m["containerPort"] <= 32767  # the default NodePort range
