"""The node's network, all inside this machine: a bridge with the node's address, the pods'
CNI configuration (bridge + host-local, no masquerade, no default route), a FORWARD rule that
keeps pod traffic on the bridge, and the host route to the Service IPs.

Everything here is undone by ``teardown``, including the sysctls the node's components change.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from pathlib import Path

from .controlplane import SERVICE_CIDR

BRIDGE = "kubevox0"
NODE_IP = "10.244.0.1"  # the bridge's address: the node's InternalIP, the pods' gateway
POD_CIDR = "10.244.0.0/24"
FORWARD_CHAIN = "KUBEVOX-FORWARD"
CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")

# Set by the node's components (the bridge CNI plugin, kubelet), restored by teardown.
TOUCHED_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _sysctl(name: str, value: str | None = None) -> str:
    path = Path("/proc/sys") / name
    if value is not None:
        path.write_text(value)
    return path.read_text().strip()


def save_sysctls(path: Path) -> None:
    """Remember the values the node may change (kept if already saved: a second `up` after a
    failed one must not record the node's values as the host's)."""
    if not path.exists():
        path.write_text(json.dumps({n: _sysctl(n) for n in TOUCHED_SYSCTLS}))


def restore_sysctls(path: Path) -> None:
    if not path.exists():
        return
    for name, value in json.loads(path.read_text()).items():
        if name == "net/ipv4/ip_forward" and _other_bridges_in_use():
            continue  # another bridge's containers (podman's, say) need it too
        with contextlib.suppress(OSError):
            if _sysctl(name) != value:
                _sysctl(name, value)


def _other_bridges_in_use() -> bool:
    """A bridge other than ours with ports: someone else's containers are running."""
    return any(
        brif.parent.name != BRIDGE and any(brif.iterdir())
        for brif in Path("/sys/class/net").glob("*/brif")
    )


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{BRIDGE}").exists()


def up(state: Path) -> None:
    """Create the bridge, its address, the Service route and the FORWARD guard."""
    save_sysctls(state / "sysctls.json")
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # The host reaches Service IPs through the bridge (kube-proxy DNATs them to pods); without
    # this route they would follow the default route out of the machine.
    _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    # Service traffic between pods on the bridge must pass through iptables (kube-proxy's DNAT).
    _sysctl("net/bridge/bridge-nf-call-iptables", "1")
    # Pod traffic stays on the bridge: to pods, or (INPUT) to the host. Nothing is forwarded
    # anywhere else, whatever ip_forward says (the bridge plugin turns it on). In the mangle
    # table, which the kernel walks before the filter table's FORWARD, where kube-proxy puts
    # its ACCEPT rules first.
    mangle = ("iptables", "-t", "mangle")
    _run(*mangle, "-N", FORWARD_CHAIN)
    _run(*mangle, "-A", FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN")
    _run(*mangle, "-A", FORWARD_CHAIN, "-i", BRIDGE, "-j", "DROP")
    _run(*mangle, "-A", FORWARD_CHAIN, "-o", BRIDGE, "-j", "DROP")
    _run(*mangle, "-I", "FORWARD", "1", "-j", FORWARD_CHAIN)


def cni_config(conf_dir: Path, ipam_dir: Path) -> None:
    """The pods' network: veths on the bridge, addresses from POD_CIDR, a route to the Service
    IPs through the node and no default route (so no address outside the machine is reachable),
    no masquerade."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "0.4.0",
        "name": "kubevox",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "rangeStart": "10.244.0.10"}]],
                    "routes": [{"dst": SERVICE_CIDR}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (conf_dir / "10-kubevox.conflist").write_text(json.dumps(config, indent=2))


def _kube_rules(binary: str) -> list[tuple[str, list[str], list[str]]]:
    """(table, jumps into KUBE-* chains from other chains, KUBE-* chains) in ``binary``'s
    tables, from its save output."""
    out = _run(f"{binary}-save", check=False).stdout
    found: list[tuple[str, list[str], list[str]]] = []
    table = ""
    jumps: list[str] = []
    chains: list[str] = []
    for line in out.splitlines():
        if line.startswith("*"):
            table, jumps, chains = line[1:], [], []
        elif line.startswith(":KUBE-"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and not line.startswith("-A KUBE-") and "-j KUBE-" in line:
            jumps.append(line[3:])
        elif line == "COMMIT" and (jumps or chains):
            found.append((table, jumps, chains))
    return found


def kube_chains() -> list[str]:
    """KUBE-* chains in any table, IPv4 and IPv6 (kubelet's and kube-proxy's)."""
    return [
        f"{binary}:{table}:{chain}"
        for binary in ("iptables", "ip6tables")
        for table, _, chains in _kube_rules(binary)
        for chain in chains
    ]


def remove_kube_chains() -> None:
    """What kube-proxy --cleanup leaves (kubelet's canaries, a chain of a crashed run)."""
    for binary in ("iptables", "ip6tables"):
        for table, jumps, chains in _kube_rules(binary):
            for rule in jumps:
                _run(binary, "-t", table, "-D", *shlex.split(rule), check=False)
            for chain in chains:
                _run(binary, "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(binary, "-t", table, "-X", chain, check=False)


def teardown(state: Path) -> None:
    """Remove the bridge (and its route), the FORWARD guard and every KUBE-* chain, and put
    the sysctls back. Safe to repeat, and on a half-made network."""
    if bridge_exists():
        _run("ip", "link", "delete", BRIDGE, check=False)
    mangle = ("iptables", "-t", "mangle")
    while _run(*mangle, "-D", "FORWARD", "-j", FORWARD_CHAIN, check=False).returncode == 0:
        pass
    _run(*mangle, "-F", FORWARD_CHAIN, check=False)
    _run(*mangle, "-X", FORWARD_CHAIN, check=False)
    remove_kube_chains()
    restore_sysctls(state / "sysctls.json")


def leftovers() -> list[str]:
    """What a node leaves on this machine if it was not torn down: empty when clean."""
    found = [f"bridge {BRIDGE}"] if bridge_exists() else []
    if _run("iptables", "-t", "mangle", "-S", FORWARD_CHAIN, check=False).returncode == 0:
        found.append(f"iptables chain {FORWARD_CHAIN}")
    found += [f"iptables chain {c}" for c in kube_chains()]
    found += [f"veth {line.split('@')[0]}" for line in bridge_ports()]
    return found


def bridge_ports() -> list[str]:
    """Host ends of pod veths (the bridge plugin names them veth<hex>) still on the bridge."""
    out = _run("ip", "-o", "link", "show", "master", BRIDGE, check=False).stdout
    return [line.split(": ")[1] for line in out.splitlines() if ": " in line]
