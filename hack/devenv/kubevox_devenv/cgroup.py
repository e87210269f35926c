"""A process confined the way kubelet confines a pod: in cgroups of its own (v1, the hierarchy of
these machines: real-node.md), with a CPU limit enforced by CFS quota, pinned to chosen cores,
a memory limit, and its CPU time and working set read from the cgroups rather than summed over a
process tree. The capacity bench (bench/capacity.py) and the memory tests use it; it needs root.

The working set is what kubelet reports and evicts on: memory use less the inactive page cache.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from agent_runtime.pod_memory import v1_working_set

ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def working_set_mib(memory_dir: Path) -> float:
    """The working set of a v1 memory cgroup (usage less inactive file pages), in MiB: the
    worker's own measure of itself (agent_runtime/pod_memory.py)."""
    return v1_working_set(memory_dir) / 2**20


def why_not() -> str | None:
    """Why this machine cannot confine a process in a pod's cgroups, or None when it can."""
    if os.geteuid() != 0:
        return "not root: making cgroups needs root"
    if not (ROOT / "memory" / "memory.limit_in_bytes").exists():
        return "no cgroup v1 memory controller at /sys/fs/cgroup/memory (as the node has)"
    return None


class Cgroups:
    """The cpu, cpuacct, cpuset and memory cgroups at ``path`` (relative to each controller's
    mount), read as kubelet reads a pod's."""

    CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory")
    """Mounted apart on these machines; where cpu and cpuacct share a mount, both names are
    links to it."""

    def __init__(self, path: str) -> None:
        self.name = path
        self.dirs = {c: ROOT / c / path for c in self.CONTROLLERS}

    def _distinct(self) -> list[Path]:
        return list({d.resolve(): d for d in self.dirs.values()}.values())

    def cpu_seconds(self) -> float:
        return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9

    def throttled_seconds(self) -> float:
        """Time the CFS quota held the group's runnable threads back."""
        stat = (self.dirs["cpu"] / "cpu.stat").read_text().split()
        return int(dict(zip(stat[::2], stat[1::2], strict=True))["throttled_time"]) / 1e9

    def working_set_mib(self) -> float:
        return working_set_mib(self.dirs["memory"])

    def pids(self) -> list[int]:
        """The processes in the group and its children now (a pod's worker and its job
        processes; a kubelet pod's processes are in its containers' groups)."""
        top = self.dirs["cpuacct"]
        return [int(p) for f in top.rglob("cgroup.procs") for p in f.read_text().split()]


def kubelet_pod(uid: str) -> Cgroups:
    """The cgroups kubelet made for the pod ``uid`` (cgroupfs driver: ``kubepods/pod<uid>``
    for a Guaranteed pod, under ``burstable/`` or ``besteffort/`` otherwise)."""
    top = ROOT / "cpuacct" / "kubepods"
    (found,) = [p for p in top.rglob(f"pod{uid}") if p.is_dir()]
    return Cgroups(str(found.relative_to(ROOT / "cpuacct")))


class PodCgroup(Cgroups):
    """cpu, cpuacct, cpuset and memory cgroups named ``name``, made here: ``cpus`` cores of
    CPU time at most (as a pod's ``limits.cpu``; None: no quota), on the cores ``cpuset``
    (None: all)."""

    def __init__(
        self, name: str, cpus: float | None = None, cpuset: set[int] | None = None
    ) -> None:
        super().__init__(name)
        for d in self._distinct():
            d.mkdir(exist_ok=True)
        if cpus is not None:
            cpu = self.dirs["cpu"]
            (cpu / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * CFS_PERIOD_US)))
        cs, top = self.dirs["cpuset"], ROOT / "cpuset"
        (cs / "cpuset.mems").write_text((top / "cpuset.mems").read_text().strip())
        cores = ",".join(map(str, sorted(cpuset))) if cpuset else (top / "cpuset.cpus").read_text()
        (cs / "cpuset.cpus").write_text(cores.strip())

    def launcher(self) -> list[str]:
        """An argv prefix that starts a program inside the group, born there as a pod's
        container is (a process moved in later leaves the memory it has touched charged where
        it was: these kernels refuse ``memory.move_charge_at_immigrate``; and a process with
        real-time threads, as LiveKit's, cannot join a cpu group at all)."""
        procs = [str(d / "cgroup.procs") for d in self._distinct()]
        return [sys.executable, "-m", __name__, *procs, "--"]

    def limit_memory(self, limit: int | None) -> None:
        """A memory limit in bytes, as a pod's ``limits.memory`` (None: none)."""
        value = str(limit) if limit is not None else "-1"
        (self.dirs["memory"] / "memory.limit_in_bytes").write_text(value)

    def remove(self) -> None:
        """Once its processes have exited (an rmdir of a group with members fails)."""
        for d in self._distinct():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.2)


def _enter_and_exec(args: list[str]) -> None:
    """``python -m kubevox_devenv.cgroup PROCS... -- PROGRAM ARGS...``: join the groups (each
    by its ``cgroup.procs``), then become the program."""
    split = args.index("--")
    for procs in args[:split]:
        Path(procs).write_text(str(os.getpid()))
    program = args[split + 1 :]
    os.execv(program[0], program)


if __name__ == "__main__":
    _enter_and_exec(sys.argv[1:])
