"""The configuration of the local node (kubevox_devenv.node): containerd's config.toml,
kubelet's KubeletConfiguration and kube-proxy's KubeProxyConfiguration, made from the node's
paths, ports and certificates. node.Node writes them under its directory and starts the
processes that read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import nodenet

NODE_NAME = "kubevox-node"
DNS_IP = "10.0.0.10"  # the kube-dns Service, the pods' nameserver
CLUSTER_DOMAIN = "cluster.local"


def kubelet_config(
    node_dir: Path,
    socket: Path,
    *,
    port: int,
    healthz_port: int,
    serving: tuple[Path, Path],
    client_ca: Path,
    exclusive_cpus: bool = False,
) -> dict[str, Any]:
    """kubelet's configuration: serving on the node's address with ``serving`` (certificate,
    key), clients checked against ``client_ca``, containerd at ``socket``.

    ``exclusive_cpus``: kubelet's static CPU manager, which gives a Guaranteed pod asking whole
    cores cores of its own (the capacity bench pins its worker pod so), never the first one,
    which it keeps for itself and every other pod; otherwise the default policy, every pod on
    every core."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",  # cgroup v1 here, and no systemd to delegate to
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": nodenet.NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(node_dir / "resolv.conf"),
        "podLogsDir": str(node_dir / "pod-logs"),
        # Its KUBE-FIREWALL rule drops packets to 127.0.0.0/8 from other sources, which
        # breaks loopback WebRTC between host processes.
        "makeIPTablesUtilChains": False,
        "failSwapOn": False,
        # A big shared disk: evict or collect images only when it is really full.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "serializeImagePulls": False,
        "registerNode": True,
        "nodeStatusReportFrequency": "10s",
        # Pods see a changed ConfigMap at the next sync: a canary's split within 10 s (the
        # install's rollout.settleSeconds follows), where a default kubelet takes a minute.
        "syncFrequency": "10s",
    }
    if exclusive_cpus:
        # The policy needs some CPU reserved: 100m keeps core 0 out of the exclusive ones and
        # takes only 100m off the allocatable (reservedSystemCPUs would take the whole core).
        config |= {"cpuManagerPolicy": "static", "systemReserved": {"cpu": "100m"}}
    return config


def kube_proxy_config(kubeconfig: Path, healthz: str, metrics_port: int) -> dict[str, Any]:
    """kube-proxy's configuration (iptables mode), its health checks at ``healthz``
    (host:port)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": nodenet.POD_CIDR,
        "healthzBindAddress": healthz,
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # NodePorts on the bridge only, never on the machine's other interfaces, and
        # not on 127.0.0.1 (that would need route_localnet and a localnet DROP rule).
        "nodePortAddresses": [f"{nodenet.NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "syncPeriod": "30s"},
        # Leave the machine's conntrack sysctls alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def containerd_config(base: Path, cni: Path, sandbox_image: str, snapshotter: str) -> str:
    """containerd's config.toml: its root, state and socket under ``base``, CRI with runc and
    the CNI configuration in ``cni``/net.d."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{base / "containerd.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  # Nothing here may lower oom_score_adj (no CAP_SYS_RESOURCE): kubelet asks -998 for
  # sandboxes, and runc fails unless containerd clamps it to the current value.
  restrict_oom_score_adj = true
  # The pods' network namespaces are mounted under our state, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "{snapshotter}"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{base / "runc"}"

[{cri}.cni]
  bin_dir = "{nodenet.CNI_BIN}"
  conf_dir = "{cni / "net.d"}"
  max_conf_num = 1
"""
