"""The results of bench/capacity.py: a run's levels, what they hold, and the report in
docs/benchmarks.md."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import _profile
import _voice as v

TITLE = "Capacity: calls per core, CPU and memory per call"


@dataclass
class Level:
    calls: int
    samples: list[v.TurnSample] = field(default_factory=list)
    cpu_cores: float = math.nan
    """The worker's CPU while the calls talked, in cores (cgroup CPU time / wall time)."""
    memory_mib: float = math.nan
    """The worker's largest working set while the calls were live."""
    throttled_s: float = math.nan
    support_busy: float = math.nan
    """How busy the other cores (callers, LiveKit, stand-ins) were, 0..1."""
    error: str = ""
    profile: _profile.Profile | None = None

    def summary(self) -> dict[str, Any]:
        return v.summary(self.samples)

    def holds(self, baseline_p95: float) -> bool:
        return v.holds(self.summary(), self.error, baseline_p95)


@dataclass
class Run:
    stack: str
    executor: str
    idle_mib: float = math.nan
    levels: list[Level] = field(default_factory=list)
    profiled: Level | None = None
    """A further round at the most calls held, under the profilers (its latency not counted)."""

    @property
    def baseline_p95(self) -> float:
        """One call's p95 (the first level's), which the others are held to."""
        return float(self.levels[0].summary()["p95"]) if self.levels else math.nan


def per_call_mib(run: Run) -> float:
    """Least-squares slope of the working set over the number of calls, idle included: each
    further call's memory, the worker's fixed cost apart."""
    pts = [(0, run.idle_mib)] + [
        (r.calls, r.memory_mib) for r in run.levels if not math.isnan(r.memory_mib)
    ]
    if len(pts) < 2:
        return math.nan
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else math.nan


def calls_held(run: Run) -> int:
    """The most calls at which this level and every level below it held."""
    held = 0
    for r in run.levels:
        if not r.holds(run.baseline_p95):
            break
        held = r.calls
    return held


def title(cpus: float, node: bool = False) -> str:
    where = [f"on {cpus:g} of a core"] if cpus != 1 else []
    where += ["a pod of the node"] if node else []
    return f"{TITLE}: the worker {', '.join(where)}" if where else TITLE


CONFINED = {
    False: (
        "The worker runs in cgroups of its own with a CFS quota of {cpus:g} core, pinned to "
        "the last core, as kubelet confines a pod with `limits.cpu: {cpus:g}`; its CPU and "
        "working set are read from those cgroups."
    ),
    True: (
        "The worker is a pod of a real node (`--node`): the Deployment the operator's builders "
        "make for the VoiceAgent, Guaranteed with `cpu: {cpus:g}`, on a kubelet whose static CPU "
        "manager gives it cores of its own when it asks whole ones; its CPU and working set are "
        "read from the cgroups kubelet made for the pod (the pod's pause container included)."
    ),
}


def report(facts: dict[str, Any], runs: list[Run], cpus: float, node: bool = False) -> str:
    load_end = os.getloadavg()

    def f(x: float, fmt: str = ".0f") -> str:
        return "n/a" if math.isnan(x) else format(x, fmt)

    lines = [
        f"Command: `sudo {v.command_line()}`. Measured {facts['date']} on {facts['cores']} cores"
        f" ({facts['cpu']}); load average {v.fmt_load(facts['load_start'])} at the start,"
        f" {v.fmt_load(load_end)} at the end.",
        "",
        CONFINED[node].format(cpus=cpus) + " LiveKit, Redis, the stand-ins and the "
        "callers share the other cores (`callers' cores`: how busy they were; near 100 % the "
        "callers, not the worker, add latency). Latency is voice-to-voice on the callers' "
        "audio; a level holds while every turn is answered and p95 stays within 10 % of one "
        "call's.",
        "",
        "| stack | executor | calls held | calls per core (at least) | idle MiB |"
        " MiB per further call |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        held = calls_held(run)
        lines.append(
            f"| {run.stack} | `{run.executor}` | **{held}** | {f(held / cpus, 'g')} |"
            f" {f(run.idle_mib)} |"
            f" **{f(per_call_mib(run))}** |"
        )
    lines += [
        "",
        "| stack | executor | calls | replies | p50 ms | p95 ms | CPU (cores) | CPU per call |"
        " working set MiB | throttled s | callers' cores | holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in run.levels:
            s = r.summary()
            lines.append(
                f"| {run.stack} | `{run.executor}` | {r.calls} | {s['replied']}/{s['turns']} |"
                f" {f(s['p50'])} | {f(s['p95'])} | {f(r.cpu_cores, '.2f')} |"
                f" {f(r.cpu_cores / r.calls, '.3f')} | {f(r.memory_mib)} |"
                f" {f(r.throttled_s, '.1f')} | {f(100 * r.support_busy)} % |"
                f" {'yes' if r.holds(run.baseline_p95) else 'no ' + r.error[:60]} |"
            )
    profiles = [
        (f"{run.stack} `{run.executor}`", run.profiled.profile)
        for run in runs
        if run.profiled is not None and run.profiled.profile is not None
    ]
    if profiles:
        lines += [
            "",
            "Where the worker's CPU went at the most calls held (`--profile`: a further round, "
            "not counted above). `perf` samples every thread of the worker's cgroup, native or "
            "Python; `py-spy` samples the Python stacks holding the GIL (non-blocking), by the "
            "running function (self time).",
            "",
            *_profile.report(profiles),
        ]
    return "\n".join(lines) + "\n"
