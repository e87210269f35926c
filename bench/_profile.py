"""Where a worker's CPU goes while it holds calls (bench/capacity.py --profile, issue 20).

Two samplers run from outside the worker, on the callers' cores, while the calls talk:

* ``perf`` samples every thread of every process in the worker's cgroup, Python or native, and
  splits the time by shared object (the interpreter, LiveKit's Rust FFI, ONNX Runtime, numpy,
  the kernel) and by thread name;
* ``py-spy`` (non-blocking: the worker is never paused) samples the Python stacks of the worker
  and of its job processes that hold the GIL (Python running, not waiting), and splits that
  time by the function running and by package.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PERF_HZ = 499
PYSPY_HZ = 100

Shares = list[tuple[str, float]]
"""(name, % of the samples), largest first."""


@dataclass
class Profile:
    calls: int
    by_object: Shares = field(default_factory=list)
    by_thread: Shares = field(default_factory=list)
    by_function: Shares = field(default_factory=list)
    by_package: Shares = field(default_factory=list)
    python_samples: int = 0
    error: str = ""


def why_not() -> str | None:
    """Why this machine cannot profile (None: it can)."""
    if shutil.which("perf") is None:
        return "perf is not installed"
    if _pyspy() is None:
        return "py-spy is not installed (requirements/dev.txt)"
    return None


def _pyspy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """``perf`` over ``pids`` (every thread) and ``py-spy`` over ``main_pid`` and its children,
    from ``start()`` to ``stop()``; their files are kept in ``out``."""

    def __init__(self, calls: int, pids: list[int], main_pid: int, out: Path) -> None:
        self.calls, self.pids, self.main_pid, self.out = calls, pids, main_pid, out
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def perf_data(self) -> Path:
        return self.out / f"perf-{self.calls}.data"

    @property
    def pyspy_raw(self) -> Path:
        return self.out / f"py-spy-{self.calls}.txt"

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        perf = ["perf", "record", "-q", "-F", str(PERF_HZ), "-o", str(self.perf_data)]
        perf += ["-p", ",".join(map(str, self.pids))]
        pyspy = [str(_pyspy()), "record", "--nonblocking", "--subprocesses", "--gil"]
        pyspy += ["--format", "raw"]
        pyspy += ["--rate", str(PYSPY_HZ), "--pid", str(self.main_pid), "-o", str(self.pyspy_raw)]
        for argv in (perf, pyspy):
            self._procs.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )

    def stop(self) -> Profile:
        """Stop both samplers (SIGINT: each writes its file) and read what they saw."""
        errors = []
        for p in self._procs:
            p.send_signal(signal.SIGINT)
        for p in self._procs:
            _, err = p.communicate(timeout=60)
            if p.returncode not in (0, -signal.SIGINT):
                errors.append(f"{Path(str(p.args[0])).name}: {err.decode()[-200:].strip()}")
        profile = Profile(self.calls, error="; ".join(errors))
        if self.perf_data.exists():
            profile.by_object = perf_shares(self.perf_data, "dso")
            profile.by_thread = perf_shares(self.perf_data, "comm")
        if self.pyspy_raw.exists():
            stacks = self.pyspy_raw.read_text()
            profile.by_function, profile.python_samples = python_shares(stacks, _function)
            profile.by_package, _ = python_shares(stacks, _package)
        return profile


_PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(.+?)\s*$")


def perf_shares(data: Path, key: str, least: float = 0.5) -> Shares:
    """``perf report`` by ``key`` (dso, comm): each name's share of the samples."""
    argv = ["perf", "report", "-i", str(data), "--stdio", "-q", "--no-children"]
    argv += ["--sort", key, "-g", "none", "--percent-limit", str(least)]
    text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [(m[2], float(m[1])) for line in text.splitlines() if (m := _PERF_LINE.match(line))]


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _function(frame: str) -> str:
    m = _FRAME.match(frame)
    assert m is not None
    return f"{m['func']} ({m['file']})"


def _package(frame: str) -> str:
    m = _FRAME.match(frame)
    assert m is not None
    parts = Path(m["file"]).parts
    # livekit/agents, livekit/rtc and livekit/plugins are apart; elsewhere the top package.
    return "/".join(parts[:2]) if parts[0] == "livekit" and len(parts) > 2 else parts[0]


def python_shares(raw: str, key: Callable[[str], str], top: int = 12) -> tuple[Shares, int]:
    """py-spy's raw stacks (``frame;frame;...;leaf count``): the share of the Python samples
    whose running frame (the leaf) falls under each ``key(leaf)``; and the samples' number."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        # A stack that is only its process's label (no Python frame) is not Python time.
        if stack and n.isdigit() and _FRAME.match(leaf):
            counts[key(leaf)] += int(n)
    total = sum(counts.values())
    shares = [(name, 100 * c / total) for name, c in counts.most_common(top)] if total else []
    return shares, total


def report(profiles: list[tuple[str, Profile]], top: int = 8) -> list[str]:
    """Markdown: for each run, where its CPU went."""

    def cell(shares: Shares) -> str:
        return "<br>".join(f"{s:.0f} % {name.replace('|', '/')}" for name, s in shares[:top])

    lines = [
        "| run | calls | native, by shared object (perf) | by thread (perf) |"
        " Python, by package (py-spy) | Python, by function (py-spy) |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in profiles:
        calls = f"{p.calls} ({p.error})" if p.error else str(p.calls)
        lines.append(
            f"| {name} | {calls} | {cell(p.by_object)} | {cell(p.by_thread)} |"
            f" {cell(p.by_package)} | {cell(p.by_function)} |"
        )
    return lines
