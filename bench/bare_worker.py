"""The baseline of bench/runtime_overhead.py: a bare livekit-agents worker, a plain
``AgentSession`` + ``Agent`` with the real deepgram / openai / cartesia plugins, the same local
VAD and the same turn-handling settings as kubevox (taken from the rendered config, so both
sides end turns alike) — and none of kubevox's runtime: no registry, no grounding, no metrics
observers, no call record, no tools.

Run by the benchmark, not by hand: configuration comes from the environment (BENCH_*).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from livekit.agents import (
    Agent,
    AgentServer,
    AgentSession,
    JobContext,
    JobProcess,
    inference,
    room_io,
)
from livekit.plugins import cartesia, deepgram, openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_runtime.config import load_runtime_config
from agent_runtime.session import turn_handling

CONFIG = load_runtime_config(os.environ["BENCH_CONFIG"])


class Greeter(Agent):
    async def on_enter(self) -> None:
        if CONFIG.spec.greeting:
            self.session.say(CONFIG.spec.greeting)


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = inference.VAD()


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    caller = await ctx.wait_for_participant()
    session: AgentSession[None] = AgentSession(
        stt=deepgram.STT(
            model="nova-3", language="en", api_key="bench", base_url=os.environ["BENCH_DG_URL"]
        ),
        llm=openai.LLM(model="bench", api_key="bench", base_url=os.environ["BENCH_OAI_URL"]),
        tts=cartesia.TTS(
            model="sonic-3", language="en", api_key="bench", base_url=os.environ["BENCH_CS_URL"]
        ),
        vad=ctx.proc.userdata["vad"],
        turn_handling=turn_handling(CONFIG),
    )
    done = asyncio.Event()

    def on_close(_ev: Any) -> None:
        done.set()

    session.on("close", on_close)
    await session.start(
        agent=Greeter(instructions=CONFIG.spec.instructions),
        room=ctx.room,
        room_options=room_io.RoomOptions(participant_identity=caller.identity),
    )
    await done.wait()
    ctx.shutdown(reason="session closed")


def main() -> None:
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker

    server = AgentServer(
        load_threshold=1.0,
        load_fnc=lambda: 0.0,  # capacity is the bench's business, as with KUBEVOX_CPU_LOAD_WEIGHT=0
        setup_fnc=prewarm,
        port=int(os.environ["BENCH_HEALTH_PORT"]),
        num_idle_processes=2,
        ws_url=os.environ["LIVEKIT_URL"],
        initialize_process_timeout=120.0,
    )
    server.rtc_session(entrypoint, agent_name=os.environ["BENCH_AGENT_NAME"])
    _run_worker(server, proto.CliArgs(log_level="INFO", log_format="json"))


if __name__ == "__main__":
    main()
