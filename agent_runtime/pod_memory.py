"""The worker pod's memory against its limit, read from its own cgroup (v2, or v1 as on hosts
that still mount it): what kubelet counts, the working set (use less inactive file pages).

A pod at its memory limit is killed with every call in it, so a worker near it takes no new
call (load.py), whatever its CPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
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


def _first_dir(mount: Path, own: str | None) -> Path:
    """The process's own group under ``mount``, or the mount itself (a container's cgroup
    namespace, or a bind mount of its group, shows its own group at the mount's root)."""
    if own and own != "/" and (mount / own.lstrip("/")).is_dir():
        return mount / own.lstrip("/")
    return mount


def read_memory(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> MemoryUse | None:
    """The memory this process's cgroup uses and may use; None without a limit (or a cgroup
    that cannot be read)."""
    with contextlib.suppress(OSError, ValueError):
        own = _own_paths(proc_cgroup.read_text())
        v1 = root / "memory"
        if (v1 / "memory.limit_in_bytes").exists():
            d = _first_dir(v1, own.get("memory"))
            limit = int((d / "memory.limit_in_bytes").read_text())
            if limit >= UNLIMITED_V1:
                return None
            usage = int((d / "memory.usage_in_bytes").read_text())
            return MemoryUse(usage - _stat(d, "total_inactive_file"), limit)
        d = _first_dir(root, own.get(""))
        raw = (d / "memory.max").read_text().strip()
        if raw == "max":
            return None
        usage = int((d / "memory.current").read_text())
        return MemoryUse(usage - _stat(d, "inactive_file"), int(raw))
    return None


def memory_fraction() -> float | None:
    """The share of its memory limit the pod uses (0..1), None without a limit."""
    use = read_memory()
    return use.fraction if use is not None else None
