"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC on, audit log of
writes) and kube-controller-manager (garbage collection, Deployments, Jobs, HPA).

There is no scheduler and no kubelet here: pods are created but never run, unless a node
(kubevox_devenv.node) joins it; then the API server serves on the node's address, where pods
reach it, and authorizes kubelets with the Node authorizer. ``make cluster-up`` is in
kubevox_devenv.cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .certs import LocalPKI
from .procs import ManagedProcess, built, free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "hack" / "controlplane" / "build.sh"
SERVICE_CIDR = "10.0.0.0/24"

# Writes only: the operator tests count them to prove an idle resync writes nothing.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted", "Panic"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


def audit_writes(
    audit_log: Path,
    *,
    since: float = 0.0,
    user: str | None = None,
    namespace: str | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Completed write requests in the API server's audit log (it records writes only, see
    AUDIT_POLICY) received at or after ``since`` (epoch s), by ``user`` and in ``namespace`` when
    given, among the entries after byte ``offset``. The server may be writing the last entry
    right now: only whole lines are read."""
    with audit_log.open("rb") as f:
        f.seek(offset)
        data = f.read().decode(errors="replace")
    out = []
    for line in data[: data.rfind("\n") + 1].splitlines():
        e = json.loads(line)
        if e.get("stage") != "ResponseComplete":
            continue
        if user is not None and e["user"]["username"] != user:
            continue
        if namespace is not None and e["objectRef"].get("namespace") != namespace:
            continue
        received = datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if received.timestamp() >= since:
            out.append(e)
    return out


def binaries() -> Path:
    """Directory with kube-apiserver, kube-controller-manager, kubectl and etcd (built and
    cached on first use, or taken from KUBEBUILDER_ASSETS)."""
    return built(BUILD_SCRIPT)


@dataclass
class Endpoints:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        bin_dir: Path | None = None,
        detached: bool = False,
        address: str = "127.0.0.1",
    ) -> None:
        self.detached = detached  # keep running after this process exits (make cluster-up)
        # Where the API server listens and what it advertises (the `kubernetes` Service's
        # endpoint): loopback, or a node's address that its pods can reach.
        self.address = address
        self.dir = workdir.resolve()
        self.bin = bin_dir or binaries()
        self.pki_dir = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"
        self.audit_log = self.dir / "audit.log"
        self.ports = Endpoints(free_port(), free_port(), free_port(), free_port())
        self.processes: list[ManagedProcess] = []
        self.pki: LocalPKI | None = None  # set by start(): a node issues its certificates here

    @property
    def for_node(self) -> bool:
        return self.address != "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.ports.apiserver}"

    @property
    def kubectl(self) -> Path:
        return self.bin / "kubectl"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pki = self.pki = LocalPKI(self.pki_dir)
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ),
            server_ips=tuple(dict.fromkeys(("127.0.0.1", "10.0.0.1", self.address))),
        )
        admin = pki.issue("admin", "kubevox-admin", organization="system:masters")
        kcm = pki.issue("controller-manager", "system:kube-controller-manager")
        sa_key, sa_pub = pki.service_account_keys()
        (self.dir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))

        self._etcd()
        self._apiserver(pki, serving, sa_key, sa_pub)
        self.write_kubeconfig(self.kubeconfig, pki, admin, "kubevox-admin")
        kcm_config = self.dir / "controller-manager.kubeconfig"
        self.write_kubeconfig(kcm_config, pki, kcm, "system:kube-controller-manager")
        self._controller_manager(pki, kcm_config, sa_key)

    def _run(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.dir / "logs" / f"{name}.log", detached=self.detached)
        proc.start()
        self.processes.append(proc)
        return proc

    def _etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        proc = self._run(
            "etcd",
            [
                str(self.bin / "etcd"),
                "--name=default",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",  # a throw-away test store: durability buys nothing here
                "--log-level=warn",
            ],
        )
        wait_for("etcd", lambda: _http_ok(f"{client}/health"), 60, proc.alive, proc.log_tail)

    def _apiserver(
        self, pki: LocalPKI, serving: tuple[Path, Path], sa_key: Path, sa_pub: Path
    ) -> None:
        proc = self._run(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
                f"--cert-dir={self.pki_dir}",
                f"--tls-cert-file={serving[0]}",
                f"--tls-private-key-file={serving[1]}",
                f"--client-ca-file={pki.ca_cert}",
                f"--secure-port={self.ports.apiserver}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *(self._node_flags(pki) if self.for_node else ["--authorization-mode=RBAC"]),
                "--allow-privileged=true",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--audit-policy-file={self.dir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",  # an entry is on disk when the request returns
                # Never rotated: a reader of the file sees every write (the default rotates at
                # 100 MB, which a long benchmark reaches, and the entries before it vanished).
                "--audit-log-maxsize=1000000",
                "--v=0",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        wait_for(
            "kube-apiserver",
            lambda: _http_ok(f"{self.server}/readyz", context, pki.dir / "admin"),
            120,
            proc.alive,
            proc.log_tail,
        )

    def _node_flags(self, pki: LocalPKI) -> list[str]:
        """Kubelets authorized as their own node only (Node authorizer, NodeRestriction), and
        the API server's client certificate for `kubectl logs/exec` through them."""
        client = pki.issue(
            "apiserver-kubelet-client", "kube-apiserver", organization="system:masters"
        )
        # Aggregated APIs (KEDA's external metrics for the autoscaler): the API server proxies
        # to them as "front-proxy-client", a certificate of a CA of its own, as kubeadm sets up.
        front_proxy = LocalPKI(pki.dir / "front-proxy", ca_name="kubevox-front-proxy-ca")
        proxy_client = front_proxy.issue("front-proxy-client", "front-proxy-client")
        return [
            f"--requestheader-client-ca-file={front_proxy.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={proxy_client[0]}",
            f"--proxy-client-key-file={proxy_client[1]}",
            # Straight to the extension server's pod, not through its Service's cluster IP.
            "--enable-aggregator-routing=true",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={client[0]}",
            f"--kubelet-client-key={client[1]}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager(self, pki: LocalPKI, kubeconfig: Path, sa_key: Path) -> None:
        proc = self._run(
            "kube-controller-manager",
            [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--secure-port={self.ports.controller_manager}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                # Each controller under its own ServiceAccount with its bootstrap RBAC role, as in
                # a real cluster (the shared identity may not, e.g., create ReplicaSets).
                "--use-service-account-credentials=true",
                # Fast garbage collection and HPA loops make tests short.
                "--horizontal-pod-autoscaler-sync-period=5s",
                "--concurrent-gc-syncs=20",
                "--v=0",
            ],
        )
        # The service-account controller creating "default" proves the controllers run.
        wait_for(
            "kube-controller-manager",
            lambda: (
                self.kubectl_run("get", "serviceaccount", "default", "-n", "default").returncode
                == 0
            ),
            120,
            proc.alive,
            proc.log_tail,
        )

    def write_kubeconfig(
        self, path: Path, pki: LocalPKI, cert: tuple[Path, Path], user: str
    ) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubevox-local",
                    "cluster": {"server": self.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate": str(cert[0]), "client-key": str(cert[1])},
                }
            ],
            "contexts": [
                {"name": "kubevox-local", "context": {"cluster": "kubevox-local", "user": user}}
            ],
            "current-context": "kubevox-local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def install_crds(self) -> None:
        install_crds(self.kubectl_run)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def state(self) -> dict[str, object]:
        return {
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "bin": str(self.bin),
            "pids": {p.name: p.pid for p in self.processes},
        }


KUBEVOX_CRDS = ("voiceagents.kubevox.dev", "knowledgebases.kubevox.dev")


def install_crds(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    crd_dir: Path = REPO / "crds",
    timeout: float = 60.0,
) -> None:
    """Apply kubevox's CRDs and wait until the API server serves them (Established)."""
    out = kubectl("apply", "--server-side", "-f", str(crd_dir))
    if out.returncode != 0:
        raise RuntimeError(f"installing the CRDs failed: {out.stderr}")
    # `kubectl wait` fails at once (instead of waiting) while a new CRD has no conditions yet.
    deadline = time.monotonic() + timeout
    for crd in KUBEVOX_CRDS:
        while (
            wait := kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=10s")
        ).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{crd} not Established: {wait.stderr}")
            time.sleep(0.3)


def _http_ok(url: str, context: ssl.SSLContext | None = None, client: Path | None = None) -> bool:
    if context is not None and client is not None:
        context.load_cert_chain(f"{client}.crt", f"{client}.key")
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return bool(resp.status == 200)


@contextlib.contextmanager
def temporary_control_plane(prefix: str = "kubevox-cp-") -> Iterator[ControlPlane]:
    """A control plane in a fresh directory, removed afterwards (kept when KUBEVOX_TEST_KEEP
    is set, for its logs and audit log)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    plane = ControlPlane(workdir)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
        if not os.environ.get("KUBEVOX_TEST_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
