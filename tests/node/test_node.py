"""The local node is a real one: it turns Ready, runs pods with addresses on its bridge, routes
Services through kube-proxy, resolves cluster names with CoreDNS, serves `kubectl logs`, and
leaves nothing behind when it stops. The tests run in file order; the last one stops the node."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from kubevox_devenv import node as nodemod
from kubevox_devenv import nodedown, nodenet

from .conftest import Cluster

# A node needs a control plane too: `-m "not cluster"` leaves these out as well.
pytestmark = [pytest.mark.node, pytest.mark.cluster, pytest.mark.timeout(600)]

T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 60) -> T:
    """Poll ``probe`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if result := probe():
                return result
        except Exception as e:  # a probe's transient failure is retried until the deadline
            last = e
        time.sleep(0.5)
    raise AssertionError(f"{what} not true after {timeout:.0f}s (last error: {last!r})")


def test_node_is_ready_on_its_bridge_address(cluster: Cluster) -> None:
    node = json.loads(cluster.kubectl("get", "node", nodemod.NODE_NAME, "-o", "json"))
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == nodenet.NODE_IP
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6")


def apply_pause_pod(cluster: Cluster, namespace: str, name: str) -> None:
    """A pod of the node's own pause image (imported, never pulled)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [
                {"name": "pause", "image": cluster.node.pause.ref, "imagePullPolicy": "Never"}
            ]
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))


def test_a_pod_runs_with_an_address_on_the_bridge(cluster: Cluster, namespace: str) -> None:
    apply_pause_pod(cluster, namespace, "pause")

    def running() -> dict[str, str] | None:
        status = json.loads(cluster.kubectl("get", "pod", "pause", "-n", namespace, "-o", "json"))
        return status["status"] if status["status"].get("phase") == "Running" else None

    status = eventually("the pod Running", running)
    assert status["hostIP"] == nodenet.NODE_IP
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(nodenet.POD_CIDR)
    # Its sandbox is a real one: a veth of the pod is a port of the bridge.
    assert nodenet.bridge_ports()


def test_a_service_reaches_its_pod_through_kube_proxy(cluster: Cluster) -> None:
    """From the host to CoreDNS's metrics through the kube-dns ClusterIP (kube-proxy's DNAT)."""
    with urllib.request.urlopen(f"http://{nodemod.DNS_IP}:9153/metrics", timeout=5) as resp:
        body = resp.read().decode()
    assert "coredns_build_info" in body
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert f"-d {nodemod.DNS_IP}/32" in nat
    assert "KUBE-SVC-" in nat


def test_cluster_dns_resolves_services_and_nothing_else(cluster: Cluster, namespace: str) -> None:
    assert nodemod.resolve("kubernetes.default.svc.cluster.local") == (0, ["10.0.0.1"])
    cluster.kubectl(
        "create", "service", "clusterip", "web", "--tcp=80:8080", "-n", namespace
    )  # fmt: skip
    ip = cluster.kubectl("get", "service", "web", "-n", namespace, "-o=jsonpath={.spec.clusterIP}")
    # CoreDNS learns of the new Service from the API server, which it reaches as a pod does:
    # through the `kubernetes` Service (10.0.0.1, kube-proxy) with its ServiceAccount token.
    name = f"web.{namespace}.svc.cluster.local"
    assert eventually(name, lambda: nodemod.resolve(name) == (0, [ip]))
    # No upstream: a name outside the cluster is not asked anywhere, it does not exist.
    assert nodemod.resolve("example.com")[0] == 3  # NXDOMAIN
    assert nodemod.resolve(f"missing.{namespace}.svc.cluster.local")[0] == 3


def test_pods_reach_the_api_server_through_the_kubernetes_service(cluster: Cluster) -> None:
    endpoints = json.loads(cluster.kubectl("get", "endpoints", "kubernetes", "-o", "json"))
    addresses = [a["ip"] for s in endpoints["subsets"] for a in s["addresses"]]
    assert addresses == [nodenet.NODE_IP]  # the API server advertises the node's address
    pod = json.loads(
        cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json")
    )["items"][0]
    # CoreDNS is an in-cluster client (KUBERNETES_SERVICE_HOST=10.0.0.1, from kubelet): the
    # kernel's connection table shows its connection to the `kubernetes` Service, translated by
    # kube-proxy to the API server on the node's address.
    api_port = cluster.plane.ports.apiserver
    expected = (
        f"src={pod['status']['podIP']} dst=10.0.0.1 sport=",
        f"dport=443 src={nodenet.NODE_IP} dst={pod['status']['podIP']} sport={api_port} ",
    )
    conntrack = Path("/proc/net/nf_conntrack").read_text()
    assert [line for line in conntrack.splitlines() if all(e in line for e in expected)]
    logs = cluster.kubectl("logs", "-n", "kube-system", pod["metadata"]["name"])
    assert "Failed to watch" not in logs


def test_kubectl_logs_reads_a_container_through_kubelet(cluster: Cluster) -> None:
    logs = cluster.kubectl("logs", "-n", "kube-system", "deployment/coredns")
    assert "CoreDNS-" in logs


def test_no_localnet_drop_rule(cluster: Cluster) -> None:
    """kubelet's (and kube-proxy's, with localhostNodePorts) KUBE-FIREWALL rule drops packets
    to 127.0.0.0/8 from other addresses, which breaks loopback WebRTC on the host: the node
    must not install it (kube-proxy leaves its KUBE-FIREWALL chain empty)."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert "127.0.0.0/8" not in rules
    assert "-A KUBE-FIREWALL" not in rules
    assert "KUBE-KUBELET-CANARY" not in rules  # kubelet made no chains at all


def test_pod_traffic_cannot_leave_the_machine(cluster: Cluster) -> None:
    mangle = subprocess.run(
        ["iptables-save", "-t", "mangle"], capture_output=True, text=True
    ).stdout.splitlines()
    forward = [r for r in mangle if r.startswith("-A FORWARD ")]
    assert forward[0] == f"-A FORWARD -j {nodenet.FORWARD_CHAIN}"  # before any other rule
    assert f"-A {nodenet.FORWARD_CHAIN} -i {nodenet.BRIDGE} -j DROP" in mangle
    assert f"-A {nodenet.FORWARD_CHAIN} -o {nodenet.BRIDGE} -j DROP" in mangle
    config = json.loads((cluster.node.dir / "cni" / "net.d" / "10-kubevox.conflist").read_text())
    bridge = config["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["isDefaultGateway"] is False
    assert bridge["ipam"]["routes"] == [{"dst": "10.0.0.0/24"}]  # no default route in pods


def _pod_netns(cluster: Cluster, pod_ip: str) -> str:
    """The network namespace (mounted under the node's directory) holding ``pod_ip``."""
    for point in nodedown.mounts_under(cluster.node.dir):
        if "/netns/" not in point:
            continue
        addrs = subprocess.run(
            ["nsenter", f"--net={point}", "ip", "-4", "-o", "addr"], capture_output=True, text=True
        ).stdout
        if f" {pod_ip}/" in addrs:
            return point
    raise AssertionError(f"no network namespace holds {pod_ip}")


def _drops(rule: str) -> int:
    out = subprocess.run(
        ["iptables", "-t", "mangle", "-L", nodenet.FORWARD_CHAIN, "-v", "-x", "-n"],
        capture_output=True,
        text=True,
    ).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if rule in line)


def test_a_pod_has_no_route_out_and_forwarding_is_dropped(cluster: Cluster, namespace: str) -> None:
    """Pods have no default route; and a pod that made itself one still gets nothing forwarded
    off the bridge. The would-be destination is behind a veth pair whose both ends are in this
    machine (a packet sent there goes nowhere), so even a broken guard would let nothing out."""
    apply_pause_pod(cluster, namespace, "probe")
    pod_ip = eventually(
        "the probe pod's IP",
        lambda: cluster.kubectl(
            "get", "pod", "probe", "-n", namespace, "-o=jsonpath={.status.podIP}"
        ).strip(),
    )
    netns = _pod_netns(cluster, pod_ip)
    pod_side = ["nsenter", f"--net={netns}"]
    routes = subprocess.run([*pod_side, "ip", "route"], capture_output=True, text=True).stdout
    assert "default" not in routes
    assert "10.0.0.0/24 via 10.244.0.1" in routes

    dummy, peer, target = "kvxguard0", "kvxguard1", "198.51.100.2"
    subprocess.run(["ip", "link", "add", dummy, "type", "veth", "peer", "name", peer], check=True)
    try:
        for end in (dummy, peer):
            Path(f"/proc/sys/net/ipv6/conf/{end}/disable_ipv6").write_text("1")
            subprocess.run(["ip", "link", "set", end, "up"], check=True)
        subprocess.run(["ip", "addr", "add", "198.51.100.1/24", "dev", dummy], check=True)
        sent = Path(f"/sys/class/net/{dummy}/statistics/tx_packets")
        before_tx, before_drops = int(sent.read_text()), _drops(f"{nodenet.BRIDGE} *")
        subprocess.run(
            [*pod_side, "ip", "route", "add", "198.51.100.0/24", "via", nodenet.NODE_IP], check=True
        )
        send = f"import socket; socket.socket(2, 2).sendto(b'x', ('{target}', 9))"
        for _ in range(3):
            subprocess.run([*pod_side, "python3", "-c", send], check=True)
        time.sleep(0.5)
        assert _drops(f"{nodenet.BRIDGE} *") >= before_drops + 3
        assert int(sent.read_text()) == before_tx
    finally:
        subprocess.run(["ip", "link", "delete", dummy], check=False)


def test_an_image_pull_never_leaves_the_machine(cluster: Cluster, namespace: str) -> None:
    """A missing image is not fetched from its registry: containerd's pulls go to a closed
    local port, and the pod says so."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "remote", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/kubevox/none:1"}]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def waiting_message() -> str | None:
        out = cluster.kubectl("get", "pod", "remote", "-n", namespace, "-o", "json")
        statuses = json.loads(out)["status"].get("containerStatuses", [])
        waiting = statuses[0]["state"].get("waiting", {}) if statuses else {}
        return waiting.get("message") if waiting.get("reason") == "ErrImagePull" else None

    message = eventually("ErrImagePull", waiting_message)
    assert "127.0.0.1:9" in message, message


def test_stopping_the_node_leaves_nothing(cluster: Cluster) -> None:
    """Last: stop the node (the fixture's teardown then has nothing left to do)."""
    veths = nodenet.bridge_ports()
    assert nodedown.mounts_under(cluster.node.dir), "a running node has mounts under its dir"
    cluster.node.stop()
    assert nodedown.leftovers(cluster.node.dir) == []
    present = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [v for v in veths if f" {v.split('@')[0]}@" in present]
