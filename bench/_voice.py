"""Shared pieces of the voice benchmarks (bench/voice_latency.py, bench/runtime_overhead.py).

All real but the cloud providers: a livekit-server on 127.0.0.1 (or the node's address), Redis
with search holding the sample KnowledgeBase, `kubevox-agent start` workers, and the simulated
caller that measures voice-to-voice latency on the audio (end of its speech → first reply audio
frame). The cloud providers are the stand-ins of tests/support/servers/, of fixed latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from kubevox_api import KnowledgeBase  # noqa: E402
from kubevox_devenv.knowledge import ingest_manifest  # noqa: E402
from kubevox_devenv.livekit import LiveKitServer  # noqa: E402
from kubevox_devenv.redis import RedisSearchServer  # noqa: E402
from kubevox_devenv.worker import AgentWorker  # noqa: E402

from agent_runtime.caller import CallOptions, SimulatedCall  # noqa: E402
from agent_runtime.caller.audio import FRAME_MS, Utterance, is_speech, synthesize  # noqa: E402
from tests.support.servers.cartesia_server import CartesiaServer  # noqa: E402
from tests.support.servers.deepgram_server import DeepgramServer  # noqa: E402
from tests.support.servers.openai_server import OpenAIServer, Reply  # noqa: E402
from tests.support.voice import sample_docs, write_config  # noqa: E402

INGEST = [sys.executable, "-m", "agent_runtime", "ingest"]
DOC = REPO / "docs" / "benchmarks.md"

# Fixed provider latencies (issues 4 and 7).
STT_FINAL_S = 0.150
LLM_TTFT_S = 0.300
TTS_TTFB_S = 0.150

QUESTION = "When does the pharmacy open on Saturdays?"
REPLY = "The pharmacy opens on Saturdays at nine in the morning."

_TOPICS = [
    "the pharmacy",
    "the clinic",
    "the parking lot",
    "the front desk",
    "the blood test lab",
    "the x-ray room",
    "the children's ward",
    "the dental office",
]
_FORMS = [
    "When does {} open on Saturdays?",
    "Is {} open on Sunday morning?",
    "What time does {} close on Fridays?",
    "Where exactly is {} located?",
    "Do I need an appointment for {}?",
    "Is there free parking near {}?",
    "How do I get to {} from Elm Street?",
    "Can I call {} before eight?",
]
QUESTIONS = [f.format(t) for f in _FORMS for t in _TOPICS]
"""64 distinct transcripts: the knowledge base's query cache never answers a turn for free."""


# --- machine and report -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_start": os.getloadavg(),
    }


def command_line() -> str:
    return ".venv/bin/python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def fmt_load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def load_note(start: tuple[float, ...], end: tuple[float, ...], cores: int) -> str:
    peak = max(start[0], end[0])
    if peak > cores:
        return (
            f"**The machine was loaded** (1-min load average up to {peak:.1f} on {cores} "
            "cores, other jobs included): latencies include CPU contention; re-run on an idle "
            "machine before quoting against the goals."
        )
    return f"1-min load average stayed at or below {peak:.1f} on {cores} cores."


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (numpy's default)."""
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=float), q))


def write_section(title: str, body: str) -> None:
    """Replace the ``## title`` section of docs/benchmarks.md (or append it); other sections
    are left as they are."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)


# --- audio ------------------------------------------------------------------------------------


def trimmed(text: str) -> Utterance:
    """Piper speech without its leading/trailing silence, so that "end of the caller's speech"
    is the end of the last loud frame, not of trailing silence."""
    u = synthesize(text)
    n = u.sample_rate * FRAME_MS // 1000
    loud = [i for i in range(0, len(u.samples), n) if is_speech(u.samples[i : i + n])]
    return Utterance(text, u.samples[loud[0] : loud[-1] + n].copy(), u.sample_rate)


class BenchCall(SimulatedCall):
    """The simulated caller; without ``transcribe`` it skips Whisper on what it hears (the
    stand-in TTS speaks a tone, and Whisper would only eat the CPU the worker is measured on)."""

    def __init__(self, options: CallOptions, index: int = 0, *, transcribe: bool = True) -> None:
        super().__init__(options, index)
        self.transcribe = transcribe

    async def _heard_text(self, onset: int, end: int) -> str:
        if not self.transcribe:
            return ""
        return await super()._heard_text(onset, end)


def call_options(lk: LiveKitServer, agent_name: str, **kw: Any) -> CallOptions:
    return CallOptions(
        url=lk.url,
        api_key=lk.api_key,
        api_secret=lk.api_secret,
        agent_name=agent_name,
        reply_timeout=kw.pop("reply_timeout", 45.0),
        greeting_timeout=kw.pop("greeting_timeout", 120.0),
        end_of_reply_silence=kw.pop("end_of_reply_silence", 1.0),
        **kw,
    )


# --- processes ----------------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Children started inside inherit this CPU affinity (the bench process gets it back)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Re-pin a process tree (job processes forked later inherit from their parent)."""
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                p.cpu_affinity(sorted(cpus))


def worker_pid(w: AgentWorker) -> int:
    assert w.process is not None
    assert w.process.popen is not None
    return w.process.popen.pid


def histogram(metrics_text: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram, over all label sets."""
    total = count = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack:
    """Redis (+ the ingested sample KnowledgeBase) and a livekit-server, for one bench run."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubevox-bench-")))
    support_cpus: set[int] | None = None
    host: str = "127.0.0.1"  # where Redis and LiveKit serve (the node's address, for its pods)
    redis: RedisSearchServer | None = None
    livekit: LiveKitServer | None = None
    kb: KnowledgeBase | None = None
    workers: list[AgentWorker] = field(default_factory=list)

    def __enter__(self) -> Stack:
        with pinned(self.support_cpus):
            self.redis = RedisSearchServer(host=self.host).__enter__()
            self.livekit = LiveKitServer(workdir=self.workdir / "livekit", host=self.host).start()
        self.kb = self._ingest()
        return self

    def __exit__(self, *exc: Any) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.stop()
        if self.livekit is not None:
            self.livekit.stop()
        if self.redis is not None:
            self.redis.__exit__(None, None, None)

    def _ingest(self) -> KnowledgeBase:
        assert self.redis is not None
        _, doc = sample_docs()
        doc["metadata"]["namespace"] = "e2e"
        result = ingest_manifest(doc, self.redis.url, self.workdir)
        print("ingested:", result.get("chunks"), "chunks", flush=True)
        return KnowledgeBase.model_validate(doc)

    def config(self, llm: dict[str, Any], **spec: Any) -> Path:
        assert self.kb is not None
        d = self.workdir / "configs"
        d.mkdir(exist_ok=True)
        return write_config(d, self.kb, llm, **spec)

    def worker(
        self,
        config: Path,
        cpus: set[int] | None = None,
        launcher: list[str] | None = None,
        **env: str,
    ) -> AgentWorker:
        assert self.livekit is not None
        assert self.redis is not None
        full_env = {
            **self.livekit.env(),
            "KUBEVOX_KB_0_REDIS_URL": self.redis.url,
            "KUBEVOX_CPU_LOAD_WEIGHT": "0",
            "DEEPGRAM_API_KEY": "bench",
            "CARTESIA_API_KEY": "bench",
            "OPENAI_API_KEY": "bench",
            "KUBEVOX_STT_API_KEY": "bench",
            "KUBEVOX_TTS_API_KEY": "bench",
            **env,
        }
        log = self.workdir / f"{config.stem}-{len(self.workers)}.log"
        with pinned(cpus):
            w = AgentWorker(config, full_env, log, launcher=launcher or []).start(timeout=300)
        self.workers.append(w)
        return w


def cloud_spec(
    deepgram_url: str, cartesia_url: str, agent_name: str, max_calls: int, **turn: Any
) -> dict[str, Any]:
    """The sample offline agent with the cloud providers (pointed at the stand-ins)."""
    return {
        "agentName": agent_name,
        "stt": {
            "provider": "deepgram",
            "baseURL": f"{deepgram_url}/v1/listen",
            "credentials": {"secretKeyRef": {"name": "bench", "key": "deepgram"}},
        },
        "tts": {
            "provider": "cartesia",
            "baseURL": cartesia_url,
            "credentials": {"secretKeyRef": {"name": "bench", "key": "cartesia"}},
        },
        "turnDetection": {"mode": "vad", "preemptiveGeneration": False, **turn},
        "scaling": {
            "minReplicas": 1,
            "maxReplicas": 1,
            "targetCallsPerPod": max_calls,
            "maxCallsPerPod": max_calls,
        },
    }


@contextlib.asynccontextmanager
async def cloud_stand_ins(
    host: str = "127.0.0.1",
) -> AsyncIterator[tuple[DeepgramServer, OpenAIServer, CartesiaServer]]:
    """The cloud providers' stand-ins, with the fixed latencies above, serving on ``host``."""
    dg = DeepgramServer(final_delay=STT_FINAL_S, transcripts=[QUESTION])
    llm = OpenAIServer("stand-in", default=Reply(text=REPLY, first_token_delay=LLM_TTFT_S))
    cs = CartesiaServer(first_byte_delay=TTS_TTFB_S)
    dg.host = llm.host = cs.host = host
    async with dg, llm, cs:
        yield dg, llm, cs


def openai_llm(base_url: str) -> dict[str, Any]:
    return {"provider": "openai", "model": "bench", "baseURL": base_url, "timeoutSeconds": 10}


@dataclass
class TurnSample:
    call: int
    latency_ms: float | None
    heard: str = ""


async def talk(
    call: BenchCall, utterance: Utterance, turns: int, out: list[TurnSample], delay: float = 0.0
) -> None:
    """``turns`` turns on an already started call, appending every measurement to ``out``."""
    if delay:
        await asyncio.sleep(delay)
    for _ in range(turns):
        t = await call.turn(utterance)
        out.append(TurnSample(int(call.identity.split("-")[-1]), t.latency_ms, t.heard))
        await asyncio.sleep(0.3)


async def drained(worker: AgentWorker, within: float = 60.0) -> None:
    """Wait until the previous calls' jobs have ended (LiveKit counts them against capacity)."""
    deadline = time.monotonic() + within
    for _ in range(int(within * 2)):  # polling the worker's /metrics
        if worker.active_calls() == 0 or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.5)


def summary(samples: list[TurnSample]) -> dict[str, Any]:
    lat = [s.latency_ms for s in samples if s.latency_ms is not None]
    return {
        "turns": len(samples),
        "replied": len(lat),
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "min": min(lat) if lat else math.nan,
        "max": max(lat) if lat else math.nan,
    }


DEGRADED = 1.10  # p95 more than 10 % over one call's: a level of concurrent calls fails


def holds(s: dict[str, Any], error: str, baseline_p95: float) -> bool:
    """A level (its :func:`summary`): no error, every turn answered, p95 within DEGRADED."""
    return not error and s["replied"] == s["turns"] and s["p95"] <= DEGRADED * baseline_p95
