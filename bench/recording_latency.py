"""What recording a call (spec.recording) costs its turns: voice-to-voice latency through a real
LiveKit server with and without recording, in the same run.

Two `kubevox-agent start` workers on the fixed-latency cloud stand-ins (deepgram 150 ms, openai
TTFT 300 ms, cartesia 150 ms), both pinned to the same core: one records every call (consent
``notice``) to an S3-compatible server (S3Proxy) on the other cores, one records none. Calls
alternate between them, one at a time, ``--rounds`` calls each with ``--turns`` counted turns
(one warm-up turn not counted); each turn is measured on the audio by the simulated caller.

    .venv/bin/python bench/recording_latency.py [--rounds 4] [--turns 10] [--write-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _voice as v
from kubevox_api.voiceagent_recording import STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV
from kubevox_devenv.s3 import S3Server
from llm_eval import write_section

from tests.support.servers.cartesia_server import CartesiaServer
from tests.support.servers.deepgram_server import DeepgramServer
from tests.support.servers.openai_server import OpenAIServer, Reply

TITLE = "### Recording a call: what it costs a turn (bench/recording_latency.py)"
BUCKET = "bench-calls"


def recording(s3: S3Server) -> dict[str, Any]:
    return {
        "consent": "notice",
        "notice": "This call is recorded.",
        "storage": {
            "endpoint": s3.endpoint,
            "bucket": BUCKET,
            "accessKeyRef": {"name": "s3", "key": "access"},
            "secretKeyRef": {"name": "s3", "key": "secret"},
        },
    }


async def one_call(stack: v.Stack, agent: str, turns: int, out: list[v.TurnSample]) -> None:
    assert stack.livekit is not None
    utterance = v.trimmed(v.QUESTION)
    call = v.BenchCall(v.call_options(stack.livekit, agent), transcribe=False)
    try:
        await call.start()
        if call.result.greeting is None:
            raise RuntimeError(f"{agent}: the call was not answered")
        await call.turn(utterance)  # warm-up, not counted
        await v.talk(call, utterance, turns, out)
    finally:
        with contextlib.suppress(Exception):
            await call.hang_up()


async def run(args: argparse.Namespace) -> tuple[dict[str, list[v.TurnSample]], list[int]]:
    cores = os.cpu_count() or 1
    worker_cpus = {cores - 1} if cores > 1 else None
    support = set(range(cores - 1)) if cores > 1 else None
    samples: dict[str, list[v.TurnSample]] = {"recorded": [], "not recorded": []}
    with v.Stack(support_cpus=support) as stack, v.pinned(support), S3Server() as s3:
        s3.make_bucket(BUCKET)
        async with (
            DeepgramServer(final_delay=v.STT_FINAL_S, transcripts=[v.QUESTION]) as dg,
            OpenAIServer("stand-in", default=Reply(text=v.REPLY, first_token_delay=v.LLM_TTFT_S))
            as llm,
            CartesiaServer(first_byte_delay=v.TTS_TTFB_S) as cs,
        ):  # fmt: skip
            keys = {STORAGE_ACCESS_KEY_ENV: s3.access_key, STORAGE_SECRET_KEY_ENV: s3.secret_key}
            agents = {"recorded": "bench-recorded", "not recorded": "bench-unrecorded"}
            for kind, agent in agents.items():
                spec = v.cloud_spec(dg.url, cs.url, agent, 2)
                if kind == "recorded":
                    spec["recording"] = recording(s3)
                stack.worker(stack.config(v.openai_llm(llm.base_url), **spec), worker_cpus, **keys)
            for i in range(args.rounds):
                for kind, agent in agents.items():
                    await one_call(stack, agent, args.turns, samples[kind])
                    print(f"round {i + 1} {kind}: {v.summary(samples[kind])}", flush=True)
            await asyncio.sleep(5)  # the last call's upload
            sizes = [o.size or 0 for o in s3.client().list_objects(BUCKET, recursive=True)]
    return samples, sizes


def report(samples: dict[str, list[v.TurnSample]], sizes: list[int], args: Any, facts: Any) -> str:
    def cell(x: float) -> str:
        return f"{x:.0f}"

    rows = {k: v.summary(s) for k, s in samples.items()}
    rec, plain = rows["recorded"], rows["not recorded"]
    lines = [
        TITLE,
        "",
        f"{facts['date']}, `{v.command_line()}` on {facts['cores']} cores ({facts['cpu']}), "
        f"load at start {v.fmt_load(facts['load_start'])}, at end {v.fmt_load(os.getloadavg())}."
        " Both workers on the fixed-latency cloud stand-ins, pinned to the same core; calls "
        f"alternate, {args.rounds} calls each of {args.turns} counted turns.",
        "",
        "| worker | replies | p50 ms | p95 ms | min | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, s in rows.items():
        lines.append(
            f"| {kind} | {s['replied']}/{s['turns']} | {cell(s['p50'])} | {cell(s['p95'])} | "
            f"{cell(s['min'])} | {cell(s['max'])} |"
        )
    lines += [
        "",
        f"Recording's difference: p50 {rec['p50'] - plain['p50']:+.0f} ms, p95 "
        f"{rec['p95'] - plain['p95']:+.0f} ms. Recordings uploaded: {len(sizes)} of "
        f"{args.rounds} calls, about {sum(sizes) / max(len(sizes), 1) / 1024:.0f} KiB each.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    facts = v.machine()
    samples, sizes = asyncio.run(run(args))
    text = report(samples, sizes, args, facts)
    print(text)
    if args.write_docs:
        write_section(v.DOC, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
