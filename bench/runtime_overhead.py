"""kubevox's runtime overhead (issue 4): the same call, the same fixed-latency providers, through
our runtime and through a bare livekit-agents worker, in the same run.

Both workers are real processes registered with the same real livekit-server, pinned to the
same CPU; a simulated caller talks to each through LiveKit and measures voice-to-voice latency
on the audio (end of its speech → first reply audio). Turns alternate between the two calls so
both see the same machine load. The providers are the real deepgram / openai / cartesia plugins
against stand-ins of fixed latency (STT final 150 ms after end of speech, LLM TTFT 300 ms, TTS
first byte 150 ms).

* kubevox side: `kubevox-agent start` (registry, build_call, KubevoxAgent with grounding on the
  sample KnowledgeBase in Redis — every turn embeds a new question locally and searches Redis —
  metrics observers, call record).
* bare side: bench/bare_worker.py — AgentSession + plain Agent, same plugins, same VAD, same turn
  handling, nothing else.

Overhead = kubevox minus bare, at p50 and p95, in ms and as a ratio. Then CPU per concurrent call:
``--calls`` simultaneous calls on each worker, worker process-tree CPU seconds per call per
second of call.

    .venv/bin/python bench/runtime_overhead.py [--turns 20] [--calls 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _voice as v
from kubevox_devenv.procs import ManagedProcess, free_port

from agent_runtime import metrics as m
from tests.support.servers.cartesia_server import CartesiaServer
from tests.support.servers.deepgram_server import DeepgramServer
from tests.support.servers.openai_server import OpenAIServer, Reply

TITLE = "Runtime overhead: kubevox vs a bare livekit-agents AgentSession"
BARE = Path(__file__).resolve().parent / "bare_worker.py"


class BareWorker:
    def __init__(self, stack: v.Stack, config: Path, env: dict[str, str], cpus: set[int] | None):
        assert stack.livekit is not None
        self.log = stack.workdir / "bare-worker.log"
        full = {**os.environ, **stack.livekit.env(), **env, "BENCH_CONFIG": str(config)}
        full["BENCH_HEALTH_PORT"] = str(free_port())
        self.process = ManagedProcess("bare-worker", [sys.executable, str(BARE)], self.log, full)
        with v.pinned(cpus):
            self.process.start()
        deadline = time.monotonic() + 300
        while "registered worker" not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or not self.process.alive():
                raise RuntimeError(f"bare worker did not register:\n{self.process.log_tail(20)}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        assert self.process.popen is not None
        return self.process.popen.pid

    def stop(self) -> None:
        self.process.stop(timeout=30)


def mean_ms(before: tuple[float, float], after: tuple[float, float]) -> float:
    return 1000 * (after[0] - before[0]) / max(after[1] - before[1], 1)


async def alternate(
    a: v.BenchCall, b: v.BenchCall, utterance: v.Utterance, turns: int
) -> tuple[list[v.TurnSample], list[v.TurnSample]]:
    out_a: list[v.TurnSample] = []
    out_b: list[v.TurnSample] = []
    for i in range(turns):
        # Alternate which goes first, so neither always follows the other's reply.
        pair = [(a, out_a), (b, out_b)] if i % 2 == 0 else [(b, out_b), (a, out_a)]
        for call, out in pair:
            await v.talk(call, utterance, 1, out)
    return out_a, out_b


async def cpu_per_call(
    lk: Any, agent: str, pid: int, calls: int, turns: int, utterance: v.Utterance
) -> dict[str, float]:
    cs = [v.BenchCall(v.call_options(lk, agent), i, transcribe=False) for i in range(calls)]
    samples: list[v.TurnSample] = []
    try:
        for c in cs:
            await c.start()
            if c.result.greeting is None:
                raise RuntimeError(f"{agent}: call {c.identity} not answered")
        cpu0, t0 = v.tree_cpu_seconds(pid), time.monotonic()
        await asyncio.gather(
            *(v.talk(c, utterance, turns, samples, delay=i * 4.0 / calls) for i, c in enumerate(cs))
        )
        cpu1, t1 = v.tree_cpu_seconds(pid), time.monotonic()
    finally:
        for c in cs:
            with contextlib.suppress(Exception):
                await c.hang_up()
    s = v.summary(samples)
    s["cpu_per_call"] = (cpu1 - cpu0) / (t1 - t0) / calls
    s["cpu_per_turn"] = (cpu1 - cpu0) / max(len(samples), 1)
    return s


async def main(args: argparse.Namespace) -> int:
    facts = v.machine()
    cores = facts["cores"] or 1
    worker_cpus = {cores - 1} if cores > 1 else None
    support = set(range(cores - 1)) if cores > 1 else None
    utterance = v.trimmed(v.QUESTION)
    with v.Stack() as stack:
        assert stack.livekit is not None
        assert stack.livekit.process is not None
        assert stack.livekit.process.popen is not None
        before_aff = os.sched_getaffinity(0)
        if support:
            os.sched_setaffinity(0, support)
            v.pin_tree(stack.livekit.process.popen.pid, support)
        try:
            async with (
                DeepgramServer(final_delay=v.STT_FINAL_S, transcripts=v.QUESTIONS) as dg,
                OpenAIServer(
                    "stand-in", default=Reply(text=v.REPLY, first_token_delay=v.LLM_TTFT_S)
                ) as llm,
                CartesiaServer(first_byte_delay=v.TTS_TTFB_S) as cs,
            ):
                spec = v.cloud_spec(dg.url, cs.url, "kv", args.calls + 2)
                cfg = stack.config(v.openai_llm(llm.base_url), **spec)
                kv = stack.worker(cfg, worker_cpus)
                bare = BareWorker(
                    stack,
                    cfg,
                    {
                        "BENCH_AGENT_NAME": "bare",
                        "BENCH_DG_URL": f"{dg.url}/v1/listen",
                        "BENCH_OAI_URL": llm.base_url,
                        "BENCH_CS_URL": cs.url,
                    },
                    worker_cpus,
                )
                try:
                    a = v.BenchCall(v.call_options(stack.livekit, "kv"), 0, transcribe=False)
                    b = v.BenchCall(v.call_options(stack.livekit, "bare"), 1, transcribe=False)
                    try:
                        await a.start()
                        await b.start()
                        if a.result.greeting is None or b.result.greeting is None:
                            raise RuntimeError("a call was not answered")
                        await a.turn(utterance)  # warm-up, not counted
                        await b.turn(utterance)
                        m0 = kv.metrics()
                        out_kv, out_bare = await alternate(a, b, utterance, args.turns)
                        m1 = kv.metrics()
                    finally:
                        await a.hang_up()
                        await b.hang_up()
                    retr = [v.histogram(x, m.RETRIEVAL_LATENCY) for x in (m0, m1)]
                    wait = [v.histogram(x, m.RETRIEVAL_WAIT) for x in (m0, m1)]
                    ttft = [v.histogram(x, m.LLM_TTFT) for x in (m0, m1)]
                    retrieval_ms = (
                        1000 * (retr[1][0] - retr[0][0]) / max(retr[1][1] - retr[0][1], 1)
                    )
                    wait_ms = 1000 * (wait[1][0] - wait[0][0]) / max(wait[1][1] - wait[0][1], 1)
                    ttft_ms = 1000 * (ttft[1][0] - ttft[0][0]) / max(ttft[1][1] - ttft[0][1], 1)
                    print(f"retrieval {retrieval_ms:.1f} ms, reply waited {wait_ms:.1f} ms, "
                          f"ttft {ttft_ms:.0f} ms", flush=True)  # fmt: skip
                    load_mid = os.getloadavg()
                    print("kubevox", v.summary(out_kv), "bare", v.summary(out_bare), flush=True)
                    cpu: dict[str, dict[str, float]] = {}
                    if args.calls > 0:
                        await v.drained(kv)
                        cpu["kubevox"] = await cpu_per_call(
                            stack.livekit, "kv", v.worker_pid(kv), args.calls, 4, utterance
                        )
                        cpu["bare"] = await cpu_per_call(
                            stack.livekit, "bare", bare.pid, args.calls, 4, utterance
                        )
                        print("cpu", cpu, flush=True)
                finally:
                    bare.stop()
        finally:
            os.sched_setaffinity(0, before_aff)
    write_doc(
        facts,
        out_kv,
        out_bare,
        retrieval_ms,
        wait_ms,
        ttft_ms,
        cpu,
        load_mid,
        os.getloadavg(),
        args,
    )
    return 0


def write_doc(
    facts: dict[str, Any],
    out_kv: list[v.TurnSample],
    out_bare: list[v.TurnSample],
    retrieval_ms: float,
    wait_ms: float,
    ttft_ms: float,
    cpu: dict[str, dict[str, float]],
    load_mid: tuple[float, float, float],
    load_end: tuple[float, float, float],
    args: argparse.Namespace,
) -> None:
    k, b = v.summary(out_kv), v.summary(out_bare)
    d50, d95 = k["p50"] - b["p50"], k["p95"] - b["p95"]
    verdict = "met" if d95 <= 15 else "**not met**"
    lines = [
        f"Command: `{v.command_line()}` (starts its own livekit-server, Redis with the sample "
        "KnowledgeBase, the fixed-latency stand-ins, one `kubevox-agent start` worker and one "
        "bare worker, bench/bare_worker.py).",
        "",
        f"Measured {facts['date']} on {facts['cores']} cores ({facts['cpu']}); load average at "
        f"start {v.fmt_load(facts['load_start'])}, after the latency turns "
        f"{v.fmt_load(load_mid)}, at end {v.fmt_load(load_end)}. "
        + v.load_note(facts["load_start"], load_end, facts["cores"]),
        "",
        "What is measured: voice-to-voice latency on the audio, by the simulated caller through "
        "a real livekit-server (end of its speech → first reply audio frame), for two workers "
        "pinned to the same CPU that differ only in the runtime: kubevox (registry, "
        "`build_call`, `KubevoxAgent` whose `llm_node` injects what was retrieved from the "
        "Redis-backed KnowledgeBase — local embedding of the question + hybrid search, started "
        "at the caller's final transcript —, "
        "metrics observers, call record) vs a plain `AgentSession` + `Agent` with the same "
        "plugins, VAD and turn handling (`vad`, min endpointing 500 ms, preemptive generation "
        "off). Same stand-ins (STT 150 ms, TTFT 300 ms, TTFB 150 ms), turns alternating between "
        "the two calls, every turn a different question (the embedder's query cache never "
        "helps). One warm-up turn each, not counted.",
        "",
        "| runtime | replies | p50 ms | p95 ms | min | max |",
        "|---|---|---|---|---|---|",
        f"| bare AgentSession | {b['replied']}/{b['turns']} | {b['p50']:.0f} | {b['p95']:.0f} | "
        f"{b['min']:.0f} | {b['max']:.0f} |",
        f"| kubevox | {k['replied']}/{k['turns']} | {k['p50']:.0f} | {k['p95']:.0f} | "
        f"{k['min']:.0f} | {k['max']:.0f} |",
        "",
        f"**Overhead: p50 {d50:+.0f} ms ({k['p50'] / b['p50']:.3f}x), p95 {d95:+.0f} ms "
        f"({k['p95'] / b['p95']:.3f}x)** — goal ≤ 15 ms at p95 including retrieval: {verdict}. "
        f"kubevox's own histograms over the same turns (means): retrieval {retrieval_ms:.1f} ms, "
        f"of which the reply waited {wait_ms:.1f} ms (the lookup starts at the caller's final "
        "transcript, inside the endpointing delay); LLM TTFT "
        f"{ttft_ms:.0f} ms (the stand-in's is 300 ms; livekit measures TTFT from the start of "
        "`llm_node`, so the wait is inside it). Caveat: with "
        f"{args.turns} turns per side "
        "the run-to-run noise of a p95 on a shared 2-core machine is of the same order as the "
        "goal; compare p50 for the systematic part.",
        "",
    ]
    if cpu:
        lines += [
            f"CPU per concurrent call: {args.calls} simultaneous calls on each worker (one CPU), "
            "4 turns each, staggered; worker process tree (parent + job processes) CPU seconds "
            "per second of call, and per turn (includes listening to the caller's continuous "
            "audio: VAD, Opus decode, resampling).",
            "",
            "| runtime | calls | p50 ms | p95 ms | CPU s per call-second | CPU s per turn |",
            "|---|---|---|---|---|---|",
        ]
        for name, c in cpu.items():
            lines.append(
                f"| {name} | {args.calls} | {c['p50']:.0f} | {c['p95']:.0f} | "
                f"{c['cpu_per_call']:.3f} | {c['cpu_per_turn']:.3f} |"
            )
        lines.append("")
    if math.isnan(d95):
        lines.append("(Some turns had no reply: see the replies column.)")
    v.write_section(TITLE, "\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20, help="measured turns per runtime")
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls for CPU (0: skip)")
    sys.exit(asyncio.run(main(parser.parse_args())))
