"""The worker pod's memory against its limit, read from its own cgroup (v2, or v1 as on hosts
that still mount it): what kubelet counts, the working set (use less inactive file pages).

A pod at its memory limit is killed with every call in it, so a worker near it takes no new
call (load.py), whatever its CPU.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
UNLIMITED_V1 = 2**62
"""cgroup v1 reports "no limit" as a page-rounded 2**63 - 1; anything this high is none."""


@dataclass(frozen=True)
class MemoryUse:
    working_set: int
    limit: int

    @property
    def fraction(self) -> float:
        return self.working_set / self.limit


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """Controller -> this process's cgroup path, from /proc/self/cgroup ('' is v2's)."""
    paths = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _stat(directory: Path, key: str) -> int:
    for line in (directory / "memory.stat").read_text().splitlines():
        name, value = line.split()
        if name == key:
            return int(value)
    return 0


def v1_working_set(directory: Path) -> int:
    """The working set of a cgroup v1 memory group, in bytes."""
    usage = int((directory / "memory.usage_in_bytes").read_text())
    return usage - _stat(directory, "total_inactive_file")


def _first_dir(mount: Path, own: str | None) -> Path:
    """The process's own group under ``mount``, or the mount itself (a container's cgroup
    namespace, or a bind mount of its group, shows its own group at the mount's root)."""
    if own and own != "/" and (mount / own.lstrip("/")).is_dir():
        return mount / own.lstrip("/")
    return mount


@dataclass(frozen=True)
class MemoryGroup:
    """The memory cgroup of this process: found once (a process stays in its pod's group), read
    at each look (the limit may change, as a pod's resize does)."""

    directory: Path
    v1: bool

    def read(self) -> MemoryUse | None:
        """The memory the group uses and may use; None without a limit, or unreadable."""
        d = self.directory
        with contextlib.suppress(OSError, ValueError):
            if self.v1:
                limit = int((d / "memory.limit_in_bytes").read_text())
                return MemoryUse(v1_working_set(d), limit) if limit < UNLIMITED_V1 else None
            raw = (d / "memory.max").read_text().strip()
            if raw == "max":
                return None
            usage = int((d / "memory.current").read_text())
            return MemoryUse(usage - _stat(d, "inactive_file"), int(raw))
        return None


def find_memory_group(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> MemoryGroup | None:
    """This process's memory cgroup: v1's where the v1 memory controller is mounted, else
    v2's; None where /proc/self/cgroup cannot be read."""
    try:
        own = _own_paths(proc_cgroup.read_text())
    except (OSError, ValueError):
        return None
    v1 = root / "memory"
    if (v1 / "memory.limit_in_bytes").exists():
        return MemoryGroup(_first_dir(v1, own.get("memory")), v1=True)
    return MemoryGroup(_first_dir(root, own.get("")), v1=False)


def read_memory(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> MemoryUse | None:
    """The memory this process's cgroup uses and may use; None without a limit (or a cgroup
    that cannot be read)."""
    group = find_memory_group(root, proc_cgroup)
    return group.read() if group is not None else None


@functools.cache
def _pod_group() -> MemoryGroup | None:
    return find_memory_group()


def memory_fraction() -> float | None:
    """The share of its memory limit the pod uses (0..1), None without a limit. Called at each
    load report (every 0.5 s): the group is found once, its files read each time."""
    group = _pod_group()
    use = group.read() if group is not None else None
    return use.fraction if use is not None else None
