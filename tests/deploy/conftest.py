"""Fixtures of the deploy tests: the local control plane with every CRD the rendered manifests
use, and the rendered manifests themselves."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.tools import MANIFESTS, REPO, third_party

from .render import HELM_VALUES, KUSTOMIZATIONS, helm_template, kustomize

# Namespaces the rendered manifests and examples put objects in (besides kubevox-system).
NAMESPACES = ("kubevox-system", "monitoring", "argocd", "clinic")


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    from kubevox_devenv.controlplane import binaries

    return binaries() / "kubectl"


@pytest.fixture(scope="session")
def rendered(kubectl_bin: Path) -> dict[str, str]:
    """Every installer's output, by name (kustomize-dev, helm-production, ...)."""
    out = {name: kustomize(kubectl_bin, d) for name, d in KUSTOMIZATIONS.items()}
    out.update({name: helm_template(values) for name, values in HELM_VALUES.items()})
    return out


@pytest.fixture(scope="package")
def deploy_plane() -> Iterator[object]:
    """A control plane of the deploy tests' own. Not the session's: installing the Prometheus
    Operator's CRDs there would make the operator under test in tests/operator start creating
    ServiceMonitors, and the RBAC and aggregation objects here are cluster-wide."""
    from kubevox_devenv.controlplane import temporary_control_plane

    with temporary_control_plane("kubevox-deploy-cp-") as plane:
        yield plane


@pytest.fixture(scope="package")
def cluster(deploy_plane: object) -> object:
    """A local control plane with kubevox's CRDs, kopf's peering CRDs, the Prometheus
    Operator's, KEDA's and Argo CD's CRDs (real ones, from their Go modules), and namespaces."""
    from kubevox_devenv.controlplane import ControlPlane

    plane = deploy_plane
    assert isinstance(plane, ControlPlane)
    crds = [
        *sorted((REPO / "crds").glob("*.yaml")),
        *sorted((third_party() / "crds").glob("*.yaml")),
        MANIFESTS / "base" / "crds" / "kopf-peering-namespaced.yaml",
    ]
    for f in crds:
        out = plane.kubectl_run("apply", "--server-side", "-f", str(f))
        assert out.returncode == 0, out.stderr
    # The ClusterKopfPeering CRD is the first document of manifests/base/peering.yaml.
    peering = (MANIFESTS / "base" / "peering.yaml").read_text()
    crd_docs = [d for d in peering.split("\n---\n") if "kind: CustomResourceDefinition" in d]
    out = plane.kubectl_run("apply", "--server-side", "-f", "-", input="\n---\n".join(crd_docs))
    assert out.returncode == 0, out.stderr
    _wait_established(plane.kubectl_run)
    for ns in NAMESPACES:
        got = plane.kubectl_run("create", "namespace", ns)
        assert got.returncode == 0 or "AlreadyExists" in got.stderr, got.stderr
    return plane


def _wait_established(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # `kubectl wait` errors out ("accessor error") while a new CRD has no conditions yet: retry.
    deadline = time.monotonic() + 60
    while True:
        wait = kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
        if wait.returncode == 0:
            return
        assert time.monotonic() < deadline, wait.stderr
        time.sleep(0.5)


@pytest.fixture(scope="package")
def kubectl(cluster: object) -> Callable[..., object]:
    from kubevox_devenv.controlplane import ControlPlane

    assert isinstance(cluster, ControlPlane)
    return cluster.kubectl_run
