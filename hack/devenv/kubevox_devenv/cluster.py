"""``make cluster-up`` / ``make cluster-down``: the local control plane in the background and,
where this machine can run one, a real node beside it (kubevox_devenv.node).

    python -m kubevox_devenv.cluster up --dir .kubevox [--node auto|no]
    python -m kubevox_devenv.cluster down --dir .kubevox   # stop, leave nothing behind
    python -m kubevox_devenv.cluster load --dir .kubevox IMAGE.tar...  # into the node's containerd
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import node as nodemod
from . import nodedown, nodenet, webforward
from .controlplane import ControlPlane, binaries, install_crds
from .procs import cmdline, is_alive, stop_process_group


def start_cluster(
    directory: Path, detached: bool, exclusive_cpus: bool = False
) -> tuple[ControlPlane, nodemod.Node]:
    """The node's network, a control plane on the node's address, then the node itself
    (``exclusive_cpus``: node.Node's); on failure everything started is stopped again."""
    node = nodemod.Node(directory / "node", detached, exclusive_cpus)  # builds, runs nothing
    plane = ControlPlane(directory / "controlplane", detached=detached, address=nodenet.NODE_IP)
    try:
        (directory / "node").mkdir(parents=True, exist_ok=True)
        nodenet.teardown(directory / "node")  # what a killed run may have left
        nodenet.up(directory / "node")
        plane.start()
        node.start(plane)
    except BaseException:
        stop_cluster(plane, node)
        raise
    return plane, node


def stop_cluster(plane: ControlPlane, node: nodemod.Node) -> None:
    node.stop(network=False)
    plane.stop()
    nodedown.remove_network(node.dir)


@contextlib.contextmanager
def temporary_cluster(
    prefix: str = "kubevox-node-", exclusive_cpus: bool = False
) -> Iterator[tuple[ControlPlane, nodemod.Node]]:
    """A control plane and its node in a fresh directory, torn down afterwards (the logs are
    copied to KUBEVOX_TEST_KEEP's directory when it is set)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    plane, node = start_cluster(workdir, detached=False, exclusive_cpus=exclusive_cpus)
    try:
        yield plane, node
    finally:
        if keep := os.environ.get("KUBEVOX_TEST_KEEP"):
            with contextlib.suppress(OSError):
                shutil.copytree(workdir / "node" / "logs", Path(keep) / "node-logs")
        stop_cluster(plane, node)
        shutil.rmtree(workdir, ignore_errors=True)


def _state_file(directory: Path) -> Path:
    return directory / "controlplane" / "state.json"


def _running(directory: Path) -> dict[str, object] | None:
    path = _state_file(directory)
    if not path.exists():
        return None
    state: dict[str, object] = json.loads(path.read_text())
    pids = state.get("pids", {})
    assert isinstance(pids, dict)
    if pids and all(is_alive(int(pid)) for pid in pids.values()):
        return state
    return None


def _start(directory: Path, node: bool) -> dict[str, object]:
    reason = nodemod.why_not() if node else "not asked for"
    if node and reason:
        print(f"no node: {reason}; starting the control plane only")
    if not reason:
        plane, started = start_cluster(directory, detached=True)
        state = plane.state() | {"node": started.state()}
        started.processes.clear()
    else:
        plane = ControlPlane(directory / "controlplane", detached=True)
        plane.start()
        state = plane.state()
    _state_file(directory).write_text(json.dumps(state, indent=2))
    print(f"control plane running: {plane.server}")
    if not reason:
        print(
            f"node {nodemod.NODE_NAME} Ready, CoreDNS on {nodemod.DNS_IP}; its containerd: "
            f"ctr --address {state['node']['containerd']} --namespace {nodedown.NAMESPACE}"  # type: ignore[index]
        )
    # Detach: the processes live in their own sessions and outlive this command.
    plane.processes.clear()
    return state


def up(directory: Path, crds: bool = True, node: bool = False) -> int:
    state = _running(directory)
    if state:
        print(f"control plane already running: {state['server']}")
    else:
        down(directory, quiet=True)
        state = _start(directory, node)
    kubeconfig = directory / "kubeconfig"
    shutil.copyfile(str(state["kubeconfig"]), kubeconfig)
    kubeconfig.chmod(0o600)
    kubectl = directory / "kubectl"
    if kubectl.is_symlink() or kubectl.exists():
        kubectl.unlink()
    kubectl.symlink_to(Path(str(state["bin"])) / "kubectl")
    if crds:
        install_crds(
            lambda *a: subprocess.run(
                [str(kubectl), f"--kubeconfig={kubeconfig}", *a], capture_output=True, text=True
            )
        )
        print("kubevox CRDs installed")
    print(f"export KUBECONFIG={kubeconfig.resolve()}")
    return 0


def down(directory: Path, quiet: bool = False) -> int:
    webforward.stop(directory)  # make run's call page on localhost
    path = _state_file(directory)
    state = json.loads(path.read_text()) if path.exists() else {}
    has_node = bool(state.get("node")) or (directory / "node").exists()
    if has_node:
        pids = state.get("node", {}).get("pids", {})
        nodedown.stop_node(directory / "node", {k: int(v) for k, v in pids.items()})
    for name, pid in reversed(list(state.get("pids", {}).items())):
        if is_alive(int(pid)) and name in cmdline(int(pid)):
            stop_process_group(int(pid))
    if has_node:
        nodedown.remove_network(directory / "node")
    shutil.rmtree(directory / "controlplane", ignore_errors=True)
    for leftover in ("kubeconfig", "kubectl"):
        p = directory / leftover
        if p.is_symlink() or p.exists():
            p.unlink()
    if not quiet:
        print("cluster stopped" if state.get("node") else "control plane stopped")
    return 0


def running_node(directory: Path) -> dict[str, object] | None:
    """The state of cluster-up's node (its containerd socket and snapshotter), if it runs."""
    state = _running(directory)
    node = state.get("node") if state else None
    return node if isinstance(node, dict) else None


def load(directory: Path, archives: list[Path]) -> int:
    """Import image archives into the running node's containerd (cluster-up's node)."""
    node = running_node(directory)
    if node is None:
        print(f"no node runs from {directory} (make cluster-up)", file=sys.stderr)
        return 1
    for archive in archives:
        sock, snapshotter = Path(str(node["containerd"])), str(node["snapshotter"])
        print(nodemod.import_image(sock, snapshotter, archive), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubevox_devenv.cluster")
    parser.add_argument("command", choices=["up", "down", "load", "binaries"])
    parser.add_argument("archives", nargs="*", type=Path, help="load: OCI or docker archives")
    parser.add_argument("--dir", type=Path, default=Path(".kubevox"))
    parser.add_argument(
        "--node", choices=["auto", "no"], default="no", help="auto: a node too, where possible"
    )
    args = parser.parse_intermixed_args(argv)  # `load --dir D A.tar` as well as `load A.tar`
    if args.command == "binaries":
        print(binaries())
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.command == "up":
        return up(args.dir, node=args.node == "auto")
    if args.command == "load":
        return load(args.dir, args.archives)
    return down(args.dir)


if __name__ == "__main__":
    sys.exit(main())
