"""Capacity of one worker pod (issue 20): concurrent calls on one core, CPU and memory per call,
for each job executor (``spec.scaling.executor``), measured from the worker's own cgroups:
``process-unshared`` is the process executor as it was before issue 20 (each job process
imports the call's modules itself), ``process`` as it is (livekit's forkserver imports them
once, for every job process), ``thread`` the calls as threads of the worker's process. A run
stops at the first level that does not hold.

The worker is a real ``kubevox-agent start`` confined as kubelet confines a pod with
``limits.cpu: 1``: cgroups of its own, a CFS quota of one core, pinned to the last core
(kubevox_devenv/cgroup.py). LiveKit, Redis, the provider stand-ins and the simulated callers
run on the other cores. Calls are real: each caller joins a LiveKit room, hears the greeting
and asks its question turn after turn; latency is measured on the audio (bench/_voice.py).

* ``cloud``: the deepgram / openai / cartesia plugins against stand-ins of fixed latency (STT
  final 150 ms, LLM first token 300 ms, TTS first byte 150 ms).
* ``offline``: the sample offline agent as shipped: Whisper, SmolLM2-135M (``local``) and Piper,
  all on the worker's core.

At each level the calls are started one after the other, then talk at once (staggered); the
level "holds" while every turn is answered and p95 stays within 10 % of one call's.

``--cpus 0.5`` gives the worker half a core: where the callers' side cannot load a whole core
with calls (2 cores: one for the worker, one for everything else), the calls held on half a
core, doubled, are a lower bound of the calls per core (the worker's fixed CPU weighs twice as
much on half a core). Its results go to a section of their own.

``--node`` runs the worker as a pod of a fresh local node instead (bench/_node_worker.py):
the operator's Deployment for the agent, Guaranteed, given a core of its own by kubelet's
static CPU manager, measured from the cgroups kubelet made for it. Its results go to a section
of their own too.

    sudo .venv/bin/python bench/capacity.py [--stacks cloud offline]
        [--executors process-unshared process thread] [--levels 1 2 4 6 8] [--cpus 1]
        [--profile | --node] [--write-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _node_worker
import _profile
import _voice as v
import psutil
from _capacity_report import Level, Run, calls_held, report, title
from kubevox_devenv import node as nodemod
from kubevox_devenv.cgroup import Cgroups, PodCgroup

from agent_runtime.worker import PRELOAD_ENV
from tests.support.voice import AVAILABLE, UNAVAILABLE, sample_agent

MODES: dict[str, tuple[str, dict[str, str]]] = {
    # Before issue 20: each job process imports the call's modules itself.
    "process-unshared": ("process", {PRELOAD_ENV: "0"}),
    # After: livekit's forkserver imports them once, the job processes share them.
    "process": ("process", {}),
    "thread": ("thread", {}),
}
"""What ``--executors`` names: spec.scaling.executor, and the worker's environment."""


class MemoryWatch:
    """The cgroup's working set sampled every ``period`` while the calls are live."""

    def __init__(self, cgroup: Cgroups, period: float = 0.5) -> None:
        self.cgroup, self.period, self.peak = cgroup, period, 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, self.cgroup.working_set_mib())
            await asyncio.sleep(self.period)

    def __enter__(self) -> MemoryWatch:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


async def available(worker: Any, within: float = 60.0) -> None:
    """Wait until the worker has told LiveKit it takes calls again (after a level that filled
    it): LiveKit offers a call once, to the workers available at that moment."""
    for _ in range(int(within * 2)):
        log = worker.log.read_text()
        if log.rfind(UNAVAILABLE) <= log.rfind(AVAILABLE):
            return
        await asyncio.sleep(0.5)


async def quiet(cgroup: Cgroups, below: float = 0.05, within: float = 120.0) -> None:
    """Wait until the worker is idle: the previous level's job processes have exited and the
    warm ones it starts in their place are ready. A call arriving meanwhile meets a worker that
    answers LiveKit's job request too late, and LiveKit does not offer it again."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cgroup.cpu_seconds()
        await asyncio.sleep(2.0)
        if (cgroup.cpu_seconds() - before) / 2.0 < below:
            return


async def level(
    stack: v.Stack,
    worker: Any,
    cgroup: Cgroups,
    agent: str,
    n: int,
    turns: int,
    support: list[int],
    profile_to: Path | None = None,
) -> Level:
    assert stack.livekit is not None
    utterance = v.trimmed(v.QUESTION)
    result = Level(n)
    per_call = max(3, math.ceil(turns / n))
    calls = [
        v.BenchCall(v.call_options(stack.livekit, agent), i, transcribe=False) for i in range(n)
    ]
    await v.drained(worker)
    await quiet(cgroup)
    await available(worker)
    with MemoryWatch(cgroup) as memory:
        try:
            for c in calls:  # one by one, as callers arrive
                await c.start()
                if c.result.greeting is None:
                    raise RuntimeError(f"call {c.identity} was not answered ({n} calls)")
            for c in calls:  # a warm-up turn each, not counted (first-use costs)
                await c.turn(utterance)
            cpu0, thr0, t0 = cgroup.cpu_seconds(), cgroup.throttled_seconds(), time.monotonic()
            psutil.cpu_percent(percpu=True)
            profiler = None
            if profile_to is not None:
                profiler = _profile.Profiler(n, cgroup.pids(), v.worker_pid(worker), profile_to)
                profiler.start()
            period = 4.0  # staggered, as independent callers would be
            await asyncio.gather(
                *(
                    v.talk(c, utterance, per_call, result.samples, delay=i * period / n)
                    for i, c in enumerate(calls)
                )
            )
            wall = time.monotonic() - t0
            busy = psutil.cpu_percent(percpu=True)
            if profiler is not None:
                result.profile = profiler.stop()
            result.cpu_cores = (cgroup.cpu_seconds() - cpu0) / wall
            result.throttled_s = cgroup.throttled_seconds() - thr0
            result.support_busy = sum(busy[i] for i in support) / (100 * len(support))
        except Exception as e:  # a call not answered: past the worker's capacity
            result.error = f"{type(e).__name__}: {e}"
        finally:
            result.memory_mib = memory.peak
            for c in calls:
                with contextlib.suppress(Exception):
                    await c.hang_up()
    return result


WorkerStart = Callable[[], contextlib.AbstractContextManager[tuple[Any, Cgroups]]]
"""Starts a run's worker, yields it and its cgroups, stops it on exit."""


def host_worker(
    stack: v.Stack, cfg: Path, name: str, env: dict[str, str], cpus: float, cores: set[int]
) -> WorkerStart:
    """A worker process on the host, in cgroups made as kubelet would (PodCgroup)."""

    @contextlib.contextmanager
    def start() -> Iterator[tuple[Any, Cgroups]]:
        cgroup = PodCgroup(name, cpus, cores)
        try:
            worker = stack.worker(cfg, cores, launcher=cgroup.launcher(), **env)
            try:
                yield worker, cgroup
            finally:
                worker.stop()
        finally:
            cgroup.remove()

    return start


async def measure(
    stack: v.Stack,
    stack_name: str,
    executor: str,
    start_worker: WorkerStart,
    args: argparse.Namespace,
    support: list[int],
) -> Run:
    run = Run(stack_name, executor)
    with start_worker() as (worker, cgroup):
        await asyncio.sleep(10)  # the idle job processes (or threads) have loaded their models
        run.idle_mib = cgroup.working_set_mib()
        print(f"{stack_name}/{executor}: idle {run.idle_mib:.0f} MiB", flush=True)
        for n in args.levels:
            r = await level(stack, worker, cgroup, agent_name(stack_name), n, args.turns, support)
            run.levels.append(r)
            s = r.summary()
            print(
                f"{stack_name}/{executor} {n} calls: p50 {s['p50']:.0f} p95 {s['p95']:.0f} ms,"
                f" {s['replied']}/{s['turns']} replied, cpu {r.cpu_cores:.2f},"
                f" memory {r.memory_mib:.0f} MiB, throttled {r.throttled_s:.1f} s,"
                f" callers' cores {r.support_busy:.0%},"
                f" holds {r.holds(run.baseline_p95)} {r.error}",
                flush=True,
            )
            if not r.holds(run.baseline_p95):  # the level this run is after
                break
            await asyncio.sleep(3)
        if args.profile:
            held = calls_held(run) or 1
            out = Path(args.profile_dir) / f"{stack_name}-{executor}"
            run.profiled = await level(
                stack, worker, cgroup, agent_name(stack_name), held, args.turns, support, out
            )
            print(
                f"{stack_name}/{executor} profiled at {held} calls: {out} {run.profiled.error}",
                flush=True,
            )
    return run


def agent_name(stack_name: str) -> str:
    return f"capacity-{stack_name}"


def llm_for(stack_name: str, stand_in: str) -> dict[str, Any]:
    if stack_name == "offline":
        return {"provider": "local", "temperature": 0, "maxTokens": 60}
    return v.openai_llm(stand_in)


def spec_for(stack_name: str, executor: str, dg: str, cs: str, max_calls: int) -> dict[str, Any]:
    spec = v.cloud_spec(dg, cs, agent_name(stack_name), max_calls)
    if stack_name == "offline":  # the sample's own whisper and piper (and llm_for's)
        del spec["stt"], spec["tts"]
    spec["scaling"]["executor"] = MODES[executor][0]
    # The first callers wait, silent, while the others arrive (a minute or more at 8 calls).
    spec["silenceTimeoutSeconds"] = 3600
    return spec


async def main(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("capacity.py makes cgroups: run it as root", file=sys.stderr)
        return 1
    facts = v.machine()
    cores = facts["cores"] or 1
    if cores < 2:
        print("capacity.py needs 2 cores: one for the worker, one for the rest", file=sys.stderr)
        return 1
    if args.profile and (why := _profile.why_not()):
        print(f"--profile: {why}", file=sys.stderr)
        return 1
    if args.node and (why := nodemod.why_not()):
        print(f"--node: this machine cannot run a node: {why}", file=sys.stderr)
        return 1
    worker_cpus, support = {cores - 1}, list(range(cores - 1))
    os.sched_setaffinity(0, set(support))  # what starts here inherits it: the node too
    runs: list[Run] = []
    with contextlib.ExitStack() as on_exit:
        node = on_exit.enter_context(_node_worker.cluster(set(support))) if args.node else None
        host = node.host if node else "127.0.0.1"
        stack = on_exit.enter_context(v.Stack(support_cpus=set(support), host=host))
        async with v.cloud_stand_ins(host) as (dg, llm, cs):
            assert stack.livekit is not None
            assert stack.redis is not None
            assert stack.kb is not None
            if node is not None:
                node.kube.apply(_node_worker.secrets(stack.livekit, stack.redis.url))
            for stack_name in args.stacks:
                for executor in args.executors:
                    spec = spec_for(stack_name, executor, dg.url, cs.url, max(args.levels))
                    lm = llm_for(stack_name, llm.base_url)
                    env = MODES[executor][1]
                    if node is None:
                        name = f"kubevox-bench-{stack_name}-{executor}"
                        cfg = stack.config(lm, **spec)
                        start = host_worker(stack, cfg, name, env, args.cpus, worker_cpus)
                    else:
                        spec |= _node_worker.pod_spec_fields(stack.livekit, args.cpus)
                        agent = sample_agent(_node_worker.with_credentials(lm), **spec)
                        env = env | {"KUBEVOX_CPU_LOAD_WEIGHT": "0"}  # as the host's worker
                        start = partial(node.worker, agent, stack.kb, env, set(support))
                    run = await measure(stack, stack_name, executor, start, args, support)
                    runs.append(run)
                    if args.write_docs:  # after each run: a long bench stopped keeps its part
                        section = title(args.cpus, args.node)
                        v.write_section(section, report(facts, runs, args.cpus, args.node))
    print(report(facts, runs, args.cpus, args.node))
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stacks", nargs="+", default=["cloud"], choices=["cloud", "offline"])
    p.add_argument("--executors", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--levels", nargs="+", type=int, default=[1, 2, 4, 6, 8])
    p.add_argument("--turns", type=int, default=20, help="turns per level at least (3 per call)")
    p.add_argument(
        "--cpus", type=float, default=1.0, help="the worker's CPU quota in cores (limits.cpu)"
    )
    p.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md")
    p.add_argument(
        "--profile", action="store_true", help="profile the worker at the most calls held"
    )
    p.add_argument("--profile-dir", default="/tmp/kubevox-capacity-profiles")
    p.add_argument(
        "--node",
        action="store_true",
        help="the worker as a pod of a fresh local node (its cgroups, its own cores)",
    )
    args = p.parse_args()
    if args.node and args.profile:
        p.error("--profile profiles a worker process of the host: not with --node")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
