"""The product as a system: one real node (kubevox_devenv.cluster), kubevox installed on it the
way users install it (`make install`: the Helm chart, the images built here, LiveKit and Redis
as pods), and the samples applied with kubectl. Starting and installing cost minutes, so the
suite shares one cluster."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubevox_devenv import install as installmod
from kubevox_devenv import node as nodemod
from kubevox_devenv.cluster import temporary_cluster

pytestmark = [pytest.mark.node, pytest.mark.system]


@dataclass
class System:
    kube: installmod.Kube
    workdir: Path
    keys: tuple[str, str]

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.kube.run(*args, input=input)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", namespace, "-o=json")
        )
        return out

    def livekit_url(self) -> str:
        """LiveKit's Service from the host, as a caller's client reaches it (kube-proxy)."""
        ip = self.kubectl(
            "get", "service", "livekit", "-n", "livekit", "-o=jsonpath={.spec.clusterIP}"
        )
        return f"ws://{ip}:7880"


def wait_until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (installmod.InstallError, OSError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if reason := nodemod.why_not():
        pytest.skip(f"this machine cannot run a node: {reason}")
    workdir = tmp_path_factory.mktemp("system")
    with temporary_cluster("kubevox-system-") as (plane, node):
        kube = installmod.Kube(plane.kubectl, plane.kubeconfig)
        state = node.state()
        containerd = (Path(str(state["containerd"])), str(state["snapshotter"]))
        installmod.install(kube, workdir, containerd)
        yield System(kube, workdir, installmod.livekit_keys(workdir))


@pytest.fixture(scope="session")
def namespace(system: System) -> str:
    """A tenant's namespace with the Secrets the samples reference (`make dev-secrets`)."""
    ns = f"sys-{uuid.uuid4().hex[:6]}"
    installmod.dev_secrets(system.kube, ns, system.keys)
    return ns
