"""A real node joined to the local control plane: containerd (with runc and the CNI plugins of
Debian), kubelet, kube-scheduler, kube-proxy (iptables) and CoreDNS, all on this machine.

Its state lives under one directory (containerd's root, state and socket, kubelet's root, the
pods' logs, the CNI configuration); nodedown.teardown stops every process, unmounts what the
node mounted there, and removes the cgroups and the network (nodenet) it made. Only one node at
a time per machine: the bridge and the iptables chains are the machine's.

The configuration files the components read (containerd, kubelet, kube-proxy) are made in
nodeconfig; this module writes them, starts the processes and waits until each is ready.

The containerd socket and namespace, to import images the node runs (``imagePullPolicy:
Never``): ``ctr --address <dir>/containerd/containerd.sock --namespace k8s.io images import``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import struct
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from . import nodeimages, nodenet
from .certs import LocalPKI
from .controlplane import REPO, ControlPlane
from .nodeconfig import CLUSTER_DOMAIN, containerd_config, kube_proxy_config, kubelet_config

# Re-exported: cluster and the node tests read them as node.DNS_IP and node.NODE_NAME.
from .nodeconfig import DNS_IP as DNS_IP
from .nodeconfig import NODE_NAME as NODE_NAME
from .nodedown import NAMESPACE, remove_network, stop_node
from .procs import ManagedProcess, built, free_port, wait_for

# containerd would pull a missing image from its registry, out of this machine: every pull goes
# to a closed local port instead and fails at once (images are imported, pull policy Never).
NO_PULLS = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
BUILD_SCRIPT = REPO / "hack" / "node" / "build-kubernetes.sh"
COREDNS_MANIFEST = REPO / "hack" / "node" / "coredns.yaml"


def why_not() -> str | None:
    """Why this machine cannot run the node, or None when it can (cluster-up and the node
    tests ask the same question)."""
    if os.geteuid() != 0:
        return "not root: a node needs to create network namespaces, mounts and cgroups"
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        return "no bridge netfilter (/proc/sys/net/bridge): Services could not reach pods"
    if not _has_cgroups():
        return "no usable cgroups (v1 memory/cpu/pids or v2 with memory and pids)"
    tools = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "iptables-save")
    for tool in (*tools, "ip", "mount", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (hack/install-system.sh installs it)"
    for plugin in nodenet.CNI_PLUGINS:
        if not (nodenet.CNI_BIN / plugin).exists():
            return f"CNI plugin {nodenet.CNI_BIN / plugin} is missing (containernetworking-plugins)"
    if nodenet.bridge_exists():
        return f"bridge {nodenet.BRIDGE} exists: another node runs here (make cluster-down)"
    return None


def _has_cgroups() -> bool:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return {"memory", "pids"} <= set((root / "cgroup.controllers").read_text().split())
    return all((root / c).is_dir() for c in ("memory", "cpu", "pids"))


def binaries() -> Path:
    """Directory with kubelet, kube-scheduler and kube-proxy (built once, cached)."""
    return built(BUILD_SCRIPT)


def overlay_works(scratch: Path) -> bool:
    """Can containerd's overlayfs snapshotter mount here (else it uses the native one)."""
    dirs = [scratch / d for d in ("lower", "upper", "work", "merged")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    lower, upper, work, merged = dirs
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    ok = _run("mount", "-t", "overlay", "overlay", "-o", opts, str(merged)).returncode == 0
    if ok:
        _run("umount", str(merged))
    shutil.rmtree(scratch, ignore_errors=True)
    return ok


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


class Node:
    """One node, ``NODE_NAME``, its state under ``workdir``, joining a control plane started
    with the node's address (nodenet.NODE_IP) once nodenet.up made that address."""

    def __init__(self, workdir: Path, detached: bool = False, exclusive_cpus: bool = False) -> None:
        """Builds (first time) and caches the binaries and images; nothing runs yet.
        ``exclusive_cpus``: nodeconfig.kubelet_config's (cores of their own for Guaranteed
        pods)."""
        self.dir = workdir.resolve()
        self.detached = detached
        self.exclusive_cpus = exclusive_cpus
        self.bin = binaries()
        self.socket = self.dir / "containerd" / "containerd.sock"
        self.snapshotter = "overlayfs"  # or "native" where overlayfs cannot mount (start)
        self.processes: list[ManagedProcess] = []
        self.pause = nodeimages.pause_image()
        self.coredns = nodeimages.coredns_image()
        self.ports = {n: free_port() for n in ("kubelet", "kubelet-healthz", "scheduler")}
        self.ports |= {n: free_port() for n in ("proxy-healthz", "proxy-metrics")}

    def start(self, plane: ControlPlane) -> None:
        if not plane.for_node or plane.pki is None:
            raise ValueError("start the control plane for a node: its address, then start()")
        self.plane = plane
        self.pki: LocalPKI = plane.pki
        try:
            self._containerd()
            self.import_image(self.pause.archive)
            self.import_image(self.coredns.archive)
            self._kubelet()
            self._scheduler()
            self._kube_proxy()
            self._wait_ready()
            self._coredns()
        except BaseException:
            self.stop(network=False)  # the caller stops the control plane, then the network
            raise

    def stop(self, network: bool = True) -> None:
        """Stop everything; ``network=False`` keeps the bridge (and the node's directory) for
        a control plane still listening there (then remove_network)."""
        stop_node(self.dir, {p.name: p.pid for p in self.processes if p.alive()})
        for p in self.processes:
            p.stop(timeout=1)  # reap what stop_node stopped
        self.processes.clear()
        if network:
            remove_network(self.dir)

    def state(self) -> dict[str, object]:
        return {
            "dir": str(self.dir),
            "containerd": str(self.socket),
            "snapshotter": self.snapshotter,
            "pids": {p.name: p.pid for p in self.processes},
        }

    # --- processes ---------------------------------------------------------------------------

    def _start(
        self,
        name: str,
        argv: list[str],
        ready: Callable[[], bool],
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> None:
        log = self.dir / "logs" / f"{name}.log"
        proc = ManagedProcess(name, argv, log, env=env, detached=self.detached)
        proc.start()
        self.processes.append(proc)
        wait_for(name, ready, timeout, proc.alive, proc.log_tail)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args,
                    timeout=timeout)  # fmt: skip

    def import_image(self, archive: Path) -> str:
        return import_image(self.socket, self.snapshotter, archive)

    def _containerd(self) -> None:
        base = self.dir / "containerd"
        base.mkdir(parents=True, exist_ok=True)
        self.snapshotter = "overlayfs" if overlay_works(base / "overlay-probe") else "native"
        nodenet.cni_config(self.dir / "cni" / "net.d", self.dir / "cni" / "ipam")
        config = base / "config.toml"
        config.write_text(
            containerd_config(base, self.dir / "cni", self.pause.ref, self.snapshotter)
        )
        self._start(
            "containerd",
            ["containerd", "--config", str(config), "--log-level", "warn"],
            lambda: self.ctr("version", timeout=5).returncode == 0,
            60,
            env=os.environ | NO_PULLS,
        )

    def _kubeconfig(self, stem: str, common_name: str, organization: str | None = None) -> Path:
        path = self.dir / f"{stem}.kubeconfig"
        cert = self.pki.issue(stem, common_name, organization=organization)
        self.plane.write_kubeconfig(path, self.pki, cert, common_name)
        return path

    def _kubelet(self) -> None:
        kubeconfig = self._kubeconfig("kubelet", f"system:node:{NODE_NAME}", "system:nodes")
        serving = self.pki.issue(
            "kubelet-serving",
            NODE_NAME,
            server_names=(NODE_NAME, "localhost"),
            server_ips=(nodenet.NODE_IP, "127.0.0.1"),
        )
        config = self.dir / "kubelet.yaml"
        (self.dir / "resolv.conf").write_text("")  # pods with dnsPolicy Default: no upstream
        config.write_text(
            yaml.safe_dump(
                kubelet_config(
                    self.dir,
                    self.socket,
                    port=self.ports["kubelet"],
                    healthz_port=self.ports["kubelet-healthz"],
                    serving=serving,
                    client_ca=self.pki.ca_cert,
                    exclusive_cpus=self.exclusive_cpus,
                )
            )
        )
        healthz = f"http://127.0.0.1:{self.ports['kubelet-healthz']}/healthz"
        self._start(
            "kubelet",
            [
                str(self.bin / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.dir / 'kubelet'}",
                f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
                f"--node-ip={nodenet.NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                f"--pod-infra-container-image={self.pause.ref}",
                "--v=0",
            ],
            lambda: _http_ok(healthz),
            120,
        )

    def _scheduler(self) -> None:
        kubeconfig = self._kubeconfig("scheduler", "system:kube-scheduler")
        port = self.ports["scheduler"]
        self._start(
            "kube-scheduler",
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--v=0",
            ],
            lambda: _https_ok(f"https://127.0.0.1:{port}/healthz"),
            60,
        )

    def _kube_proxy(self) -> None:
        kubeconfig = self._kubeconfig("kube-proxy", "system:kube-proxy")
        config = self.dir / "kube-proxy.yaml"
        healthz = f"127.0.0.1:{self.ports['proxy-healthz']}"
        metrics = self.ports["proxy-metrics"]
        config.write_text(yaml.safe_dump(kube_proxy_config(kubeconfig, healthz, metrics)))
        self._start(
            "kube-proxy",
            [str(self.bin / "kube-proxy"), f"--config={config}", "--v=0"],
            lambda: _http_ok(f"http://{healthz}/healthz"),
            60,
        )

    # --- readiness ---------------------------------------------------------------------------

    def _wait_ready(self, timeout: float = 120) -> None:
        kubelet = next(p for p in self.processes if p.name == "kubelet")
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status}'
        wait_for(
            f"node {NODE_NAME} Ready (kubelet)",
            lambda: (
                self.plane.kubectl_run(
                    "get", "node", NODE_NAME, f"-o=jsonpath={jsonpath}"
                ).stdout.strip()
                == "True"
            ),
            timeout,
            kubelet.alive,
            kubelet.log_tail,
        )

    def _coredns(self, timeout: float = 120) -> None:
        manifest = COREDNS_MANIFEST.read_text().replace("COREDNS_IMAGE", self.coredns.ref)
        out = self.plane.kubectl_run("apply", "-f", "-", input=manifest)
        if out.returncode != 0:
            raise RuntimeError(f"deploying CoreDNS failed: {out.stderr}")
        containerd = self.processes[0]
        wait_for(
            "CoreDNS",
            lambda: resolve(f"kubernetes.default.svc.{CLUSTER_DOMAIN}") == (0, ["10.0.0.1"]),
            timeout,
            containerd.alive,
        )


def import_image(socket_path: Path, snapshotter: str, archive: Path) -> str:
    """Load an OCI or docker archive into the node's containerd, where kubelet finds it (pods
    use it with imagePullPolicy Never); ctr's report of the images it unpacked."""
    out = _run(
        "ctr", "--address", str(socket_path), "--namespace", NAMESPACE,
        "images", "import", "--snapshotter", snapshotter, str(archive), timeout=600,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"importing {archive} failed: {out.stderr}")
    return out.stdout


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def _https_ok(url: str) -> bool:
    """A component's /healthz over its self-signed serving certificate (on 127.0.0.1)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return bool(resp.status == 200)


def resolve(
    name: str, server: str = DNS_IP, timeout: float = 2.0, port: int = 53
) -> tuple[int, list[str]]:
    """(rcode, IPv4 addresses) of an A query for ``name`` to ``server``: a minimal DNS client,
    so the host can ask the cluster's DNS through its Service IP."""
    query_id = os.getpid() & 0xFFFF
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, port))
        reply = s.recv(4096)
    rcode, answers = reply[3] & 0x0F, struct.unpack(">H", reply[6:8])[0]
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(answers):
        offset = _skip_name(reply, offset)
        rtype, _class, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return rcode, addresses


def _skip_name(msg: bytes, offset: int) -> int:
    while msg[offset] != 0:
        if msg[offset] & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += msg[offset] + 1
    return offset + 1
