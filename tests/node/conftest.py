"""One real node for the suite: a control plane on the node's address, containerd, kubelet,
kube-scheduler, kube-proxy and CoreDNS (kubevox_devenv.cluster). Starting it costs time, so it is
shared; the last test tears it down and checks nothing is left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubevox_devenv import node as nodemod
from kubevox_devenv.cluster import temporary_cluster
from kubevox_devenv.controlplane import ControlPlane


@dataclass
class Cluster:
    plane: ControlPlane
    node: nodemod.Node

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        out = self.plane.kubectl_run(*args, input=input)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out.stdout


# Package scope: its control plane stops when tests/node ends, not at the end of the session, so
# the suites after it (tests/system's own node above all) do not share 2 cores with it.
@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    if reason := nodemod.why_not():
        pytest.skip(f"this machine cannot run a node: {reason}")
    with temporary_cluster() as (plane, node):
        yield Cluster(plane, node)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
