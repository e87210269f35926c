"""Stopping the local node (kubevox_devenv.node) and removing everything it made, in this
process or from ``make cluster-down``'s state file: its processes, containers and shims, the
mounts under its directory, the kubepods cgroups, the files kubelet and the CNI library write at
fixed host paths, and (nodenet) its network and iptables chains."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from . import nodenet
from .procs import cmdline, stop_process_group

NAMESPACE = "k8s.io"  # containerd's namespace for Kubernetes (CRI)


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


STOP_ORDER = ("kubelet", "containerd", "kube-scheduler", "kube-proxy")


def teardown(node_dir: Path, pids: dict[str, int]) -> None:
    """Stop the node and remove everything it made (stop_node, then remove_network)."""
    stop_node(node_dir, pids)
    remove_network(node_dir)


def remove_network(node_dir: Path) -> None:
    """The bridge, the iptables chains, the sysctls, and the node's directory. After the
    control plane stopped, when it listens on the node's address: the API server takes its
    time to stop once its address is gone."""
    nodenet.teardown(node_dir)
    shutil.rmtree(node_dir, ignore_errors=True)


def stop_node(node_dir: Path, pids: dict[str, int]) -> None:
    """Stop the node's processes (kubelet first, so it restarts nothing) and containers, and
    remove its mounts under ``node_dir``, its cgroups and files."""
    node_dir = node_dir.resolve()
    socket_path = node_dir / "containerd" / "containerd.sock"
    _stop("kubelet", pids)
    _kill_containers(socket_path)
    for name in STOP_ORDER[1:]:
        _stop(name, pids)
    proxy = _proxy_binary()
    if proxy is not None:
        _run(str(proxy), "--cleanup", "--v=0")
    _unmount_under(node_dir)
    _remove_cgroups()
    _remove_host_files(node_dir)


def _host_files(node_dir: Path) -> list[Path]:
    """Files the node writes outside its directory, at paths fixed in kubelet and in the CNI
    library: container log symlinks into our pod logs, and the cached CNI results."""
    found = [
        link
        for link in Path("/var/log/containers").glob("*.log")
        if link.is_symlink() and str(node_dir) in os.readlink(link)
    ]
    results = Path("/var/lib/cni/results")
    sandboxes = node_dir / "containerd" / "root" / "io.containerd.grpc.v1.cri" / "sandboxes"
    if sandboxes.is_dir():  # containerd's loopback network, named after each pod sandbox
        found += [results / f"cni-loopback-{s.name}-lo" for s in sandboxes.iterdir()]
    return [f for f in found if f.is_symlink() or f.exists()] + list(results.glob("kubevox-*"))


def _remove_host_files(node_dir: Path) -> None:
    for path in _host_files(node_dir):
        with contextlib.suppress(OSError):
            path.unlink()


def _proxy_binary() -> Path | None:
    from .node import binaries  # the node module stops nodes too: import it when needed

    with contextlib.suppress(subprocess.CalledProcessError, OSError):
        return binaries() / "kube-proxy"
    return None


def _stop(name: str, pids: dict[str, int]) -> None:
    pid = pids.get(name)
    if pid is not None and name in cmdline(pid):
        stop_process_group(pid)


def _kill_containers(socket_path: Path) -> None:
    """Every process of every pod (they live in the kubepods cgroups), then the shims of our
    containerd (found by its socket in their command line), which then exit."""
    for procs in Path("/sys/fs/cgroup/pids/kubepods").rglob("cgroup.procs"):
        for member in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(member), signal.SIGKILL)
    if socket_path.exists():
        tasks = _run("ctr", "--address", str(socket_path), "-n", NAMESPACE, "tasks", "ls", "-q")
        for task in tasks.stdout.split():
            _run("ctr", "--address", str(socket_path), "-n", NAMESPACE, "tasks", "rm", "-f", task)
    for shim in _pids_with(f"-address {socket_path}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(shim, signal.SIGKILL)


def _pids_with(fragment: str) -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and fragment in cmdline(int(p.name))
    ]


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` (deepest first)."""
    prefix = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _unmount_under(directory: Path) -> None:
    for _ in range(3):  # a mount may hide another at the same point
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            if _run("umount", point).returncode != 0:
                _run("umount", "-l", point)


def kubepods_cgroups() -> list[Path]:
    return [d for d in Path("/sys/fs/cgroup").glob("*/kubepods*") if d.is_dir()]


def _remove_cgroups() -> None:
    """kubelet's kubepods hierarchy, innermost first (rmdir of an empty cgroup removes it)."""
    for top in kubepods_cgroups():
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def leftovers(node_dir: Path) -> list[str]:
    """What a stopped node left behind: empty when clean."""
    found = nodenet.leftovers()
    found += [f"mount {m}" for m in mounts_under(node_dir)]
    found += [f"cgroup {c}" for c in kubepods_cgroups()]
    for name in ("kubelet", "kube-scheduler", "kube-proxy", "containerd-shim"):
        found += [f"process {pid} ({name})" for pid in _pids_with(str(node_dir)) if name in
                  cmdline(pid)]  # fmt: skip
    found += [f"file {f}" for f in _host_files(node_dir)]
    if node_dir.exists():
        found.append(f"directory {node_dir}")
    return found
