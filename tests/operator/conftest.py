"""The operator under test: a real process, logged in as its ServiceAccount, against the local
control plane (so every cluster test also proves manifests/base/rbac.yaml suffices)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubevox_devenv.controlplane import ControlPlane

from tests.support.kube import Kubectl
from tests.support.operator_process import OperatorProcess, service_account_kubeconfig

REPO = Path(__file__).resolve().parents[2]
RESYNC_SECONDS = 3
PROMETHEUS_URL = "http://prometheus.test:9090"
"""Never queried here (no KEDA runs): what the operator writes into ScaledObjects."""
LIVEKIT_ALLOWED = "127.0.0.1/32"
"""The tests' LiveKit listens on 127.0.0.1: the one internal address the operator may contact
(127.0.0.2, loopback too, stays refused: tests/operator/test_operator_requests.py)."""
SIP_CLEANUP_SECONDS = 8
"""How long a deleted VoiceAgent waits for an unreachable LiveKit (default 10 minutes)."""


# Package scope: the operator under test stops when tests/operator ends (the suites after it
# share 2 cores with whatever is still running).
@pytest.fixture(scope="package")
def kubectl(crds_installed: ControlPlane) -> Kubectl:
    k = Kubectl(crds_installed)
    k("apply", "--server-side", "-f", str(REPO / "manifests/base/rbac.yaml"))
    return k


@pytest.fixture(scope="package")
def operator_kubeconfig(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    token = kubectl(
        "create", "token", "kubevox-operator", "-n", "kubevox-system", "--duration=6h"
    ).strip()
    out = tmp_path_factory.mktemp("operator") / "kubeconfig"
    return service_account_kubeconfig(kubectl.plane.kubeconfig, token, out)


@pytest.fixture(scope="package")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("operator-logs"),
        "--resync-seconds",
        str(RESYNC_SECONDS),
        "--retry-max-seconds",
        "4",
        "--image",
        "registry.test/kubevox/agent-runtime:test",
        "--prometheus-url",
        PROMETHEUS_URL,
        "--livekit-allowed-cidrs",
        LIVEKIT_ALLOWED,
        "--sip-cleanup-timeout-seconds",
        str(SIP_CLEANUP_SECONDS),
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def namespace(kubectl: Kubectl, operator: OperatorProcess) -> Iterator[str]:
    if operator.proc is not None and operator.proc.poll() is not None:
        # It exited, as a Deployment's operator would be restarted: the known kopf 404 on a watch
        # of an optional kind whose CRD a test deleted (docs/operator.md) must not fail every
        # test after it. Its log stays in operator-<n>.log.
        print(f"the shared operator had exited ({operator.proc.returncode}): restarted")
        operator.start()
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
