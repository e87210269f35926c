"""Run inside the runtime image by test_built_images.py, under a read-only root filesystem: the
worker's own prewarm (config, VAD, offline models, embedders), then one result from each offline
model through the runtime's own plugins. Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from livekit.agents import llm, utils

from agent_runtime.knowledge import static_model
from agent_runtime.knowledge.embedders import (
    LocalEmbedder,
    MultilingualEmbedder,
    StaticEmbedder,
)
from agent_runtime.plugins import PiperTTS, WhisperSTT
from agent_runtime.plugins.local_llm import LocalLLM
from agent_runtime.worker import prewarm

NOTICES = Path("/usr/share/doc/kubevox/THIRD_PARTY_NOTICES.md")


class Proc:
    """What prewarm uses of livekit's JobProcess."""

    userdata: dict[str, Any] = {}


async def main() -> None:
    # `kubevox-agent start` makes the metrics directory before any job process starts (and
    # prewarm counts in it): so does this stand-in for it, where it may write.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kubevox-metrics-")
    prewarm(Proc())  # type: ignore[arg-type]
    question = "When does the pharmacy open on Saturdays?"
    out: dict[str, Any] = {
        "minilm": LocalEmbedder().encode([question]).shape[1],
        "static": StaticEmbedder().encode([question]).shape[1],
        "multilingual": MultilingualEmbedder().encode(["Quand ouvre la pharmacie ?"]).shape[1],
        "static_file": str(static_model.find()),  # built into the image, not at run time
    }
    out["notices"] = NOTICES.read_text()  # noqa: ASYNC240 (a probe: nothing else runs)
    speech = utils.merge_frames([ev.frame async for ev in PiperTTS().synthesize("Good morning.")])
    out["speech_seconds"] = round(speech.duration, 2)
    heard = await WhisperSTT().recognize(speech)
    out["transcript"] = heard.alternatives[0].text
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="Say hello.")
    words = []
    async with LocalLLM(temperature=0, max_tokens=8).chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                words.append(chunk.delta.content)
    out["llm"] = "".join(words)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    # End as livekit's job processes end (forkserver children leave with os._exit): the rtc
    # library's native threads may still call back into Python while the interpreter finalizes,
    # and CPython then ends them with pthread_exit, which aborts inside Rust code. One run in four
    # died that way here, after printing its result.
    os._exit(0)
