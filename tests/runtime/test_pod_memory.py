"""The pod's memory against its limit, as the worker reads it from its cgroup: v1 and v2 files,
then a real cgroup with a real limit (root only, as on the CI machine and the node)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubevox_devenv.cgroup import PodCgroup, why_not

from agent_runtime.pod_memory import MemoryUse, read_memory

MIB = 2**20


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def _proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def test_v2_working_set_against_memory_max(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(
        root / "kubepods" / "pod1",
        {
            "memory.max": f"{1024 * MIB}\n",
            "memory.current": f"{600 * MIB}\n",
            "memory.stat": f"anon {400 * MIB}\ninactive_file {88 * MIB}\nactive_file 0\n",
        },
    )
    proc = _proc(tmp_path, "0::/kubepods/pod1\n")
    use = read_memory(root, proc)
    assert use == MemoryUse(512 * MIB, 1024 * MIB)
    assert use is not None
    assert use.fraction == 0.5


def test_v2_without_a_limit_is_none(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root, {"memory.max": "max\n", "memory.current": "1\n", "memory.stat": ""})
    assert read_memory(root, _proc(tmp_path, "0::/\n")) is None


def test_v1_in_a_container_reads_its_group_at_the_mount(tmp_path: Path) -> None:
    # runc on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path,
    # the container sees its own group at /sys/fs/cgroup/memory.
    root = tmp_path / "cgroup"
    _write(
        root / "memory",
        {
            "memory.limit_in_bytes": f"{2048 * MIB}\n",
            "memory.usage_in_bytes": f"{1600 * MIB}\n",
            "memory.stat": f"cache {100 * MIB}\ntotal_inactive_file {64 * MIB}\n",
        },
    )
    proc = _proc(tmp_path, "4:memory:/kubepods/burstable/podx/abc\n1:cpu,cpuacct:/kubepods\n")
    assert read_memory(root, proc) == MemoryUse(1536 * MIB, 2048 * MIB)


def test_v1_unlimited_and_unreadable_are_none(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(
        root / "memory",
        {
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.usage_in_bytes": "1\n",
            "memory.stat": "",
        },
    )
    assert read_memory(root, _proc(tmp_path, "4:memory:/\n")) is None
    assert read_memory(tmp_path / "nothing", _proc(tmp_path, "0::/\n")) is None


@pytest.mark.skipif(why_not() is not None, reason=f"a pod's cgroups: {why_not()}")
def test_a_process_in_a_limited_cgroup_reads_its_limit_and_use() -> None:
    group = PodCgroup(f"kubevox-test-{uuid.uuid4().hex[:8]}")
    group.limit_memory(512 * MIB)
    script = (
        "ballast = bytearray(64 * 2**20)\n"
        "for i in range(0, len(ballast), 4096): ballast[i] = 1\n"
        "from agent_runtime.pod_memory import read_memory\n"
        "use = read_memory()\n"
        "print(use.limit, use.working_set)\n"
    )
    try:
        proc = subprocess.run(
            [*group.launcher(), sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        limit, working_set = map(int, proc.stdout.split())
        assert limit == 512 * MIB
        assert 64 * MIB < working_set < 512 * MIB  # the ballast and the interpreter
    finally:
        group.remove()
