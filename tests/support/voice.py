"""The sample offline agent as the end-to-end suite and the voice benchmarks run it: its
documents, the runtime config the operator would render, a `kubevox-agent start` worker, its
web gateway (`kubevox-agent web`), the caller's options, and a scripted LLM that answers from
the context kubevox injected."""

from __future__ import annotations

import copy
import os
import re
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubevox_api import (
    KnowledgeBase,
    VoiceAgent,
    default_agent_name,
    render_runtime_config,
)
from kubevox_api.languages import TextLanguage
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.procs import ManagedProcess, free_port, wait_for
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker

from agent_runtime.caller import CallOptions
from agent_runtime.grounding_guard import best_sentence
from tests.support.servers.openai_server import Reply

REPO = Path(__file__).resolve().parents[2]

SAMPLE = REPO / "manifests" / "samples" / "offline-agent.yaml"
_FENCE = re.compile(r"<(reference-data-[0-9a-f]+)>\n(.*?)\n</\1>", re.S)
CALLER_SAID = "The caller said: "
UNAVAILABLE = "worker is at full capacity, marking as unavailable"
AVAILABLE = "worker is below capacity, marking as available"
"""livekit-agents' logs of the status it sends LiveKit (which offers a call only to workers
available at that moment)."""


def grounded_turn(body: dict[str, Any]) -> tuple[str, list[str]]:
    """The caller's last words and the knowledge kubevox gave the model with them: fenced
    inside that caller message (knowledge is data, never system text)."""
    messages = body.get("messages", [])
    last = next((str(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    fenced = _FENCE.search(last)
    if fenced is None:
        return last, []
    return last.rsplit(CALLER_SAID, 1)[-1], [fenced.group(2)]


def sample_docs(sample: Path = SAMPLE) -> tuple[dict[str, Any], dict[str, Any]]:
    agent, kb = yaml.safe_load_all(sample.read_text())
    return agent, kb


def answer_from_context(
    body: dict[str, Any],
    language: TextLanguage = "en",
    unknown: str = "I'm sorry, I have no information about that.",
) -> Reply:
    """A scripted LLM that answers with the knowledge-base sentence closest to the caller's
    question, found in the context kubevox injected (``unknown`` when there is none)."""
    question, context = grounded_turn(body)
    answer = best_sentence(question, context, language) if context else None
    return Reply(text=answer or unknown)


def sample_agent(llm: dict[str, Any], sample: Path = SAMPLE, **spec: Any) -> VoiceAgent:
    """A sample agent (the offline one) in namespace e2e, its language model ``llm`` and
    ``spec`` over the sample's."""
    agent_doc, _ = sample_docs(sample)
    agent_doc = copy.deepcopy(agent_doc)
    agent_doc["metadata"]["namespace"] = "e2e"
    agent_doc["spec"]["llm"] = llm
    agent_doc["spec"].update(spec)
    return VoiceAgent.model_validate(agent_doc)


def write_config(
    directory: Path, kb: KnowledgeBase, llm: dict[str, Any], sample: Path = SAMPLE, **spec: Any
) -> Path:
    """The runtime config the operator would render for a sample agent (:func:`sample_agent`)."""
    agent = sample_agent(llm, sample, **spec)
    config = render_runtime_config(agent, {kb.metadata["name"]: kb})
    path = directory / f"{agent.effective_agent_name}-{len(list(directory.iterdir()))}.json"
    path.write_text(config.model_dump_json(by_alias=True))
    return path


def start_worker(
    directory: Path,
    config: Path,
    livekit: LiveKitServer,
    redis: RedisSearchServer,
    launcher: list[str] | None = None,
    **env: str,
) -> AgentWorker:
    env = {
        **livekit.env(),
        "KUBEVOX_KB_0_REDIS_URL": redis.url,
        # The test machine's CPU is busy with the caller too: capacity is the call count.
        "KUBEVOX_CPU_LOAD_WEIGHT": "0",
        **env,
    }
    log = directory / f"{config.stem}-{len(list(directory.glob('*.log')))}.log"
    return AgentWorker(config, env, log, launcher=launcher or []).start()


@contextmanager
def stand_in_worker(
    directory: Path,
    kb: KnowledgeBase,
    llm_server: Any,
    livekit: LiveKitServer,
    redis: RedisSearchServer,
    launcher: list[str] | None = None,
    **spec: Any,
) -> Iterator[AgentWorker]:
    """A worker of the sample agent whose language model is ``llm_server`` (an OpenAI-compatible
    stand-in), with ``spec`` over the sample's, started behind ``launcher`` (start_worker's);
    stopped on exit."""
    llm = {"provider": "openai", "model": "clinic", "baseURL": llm_server.base_url}
    config = write_config(directory, kb, llm, **spec)
    worker = start_worker(directory, config, livekit, redis, launcher=launcher)
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def web_gateway(config: Path, livekit: LiveKitServer, log: Path) -> Iterator[str]:
    """`kubevox-agent web` for an agent with ``spec.web`` (as its ``<name>-web`` Deployment
    runs it), healthy on a free loopback port: its base URL, ``http://127.0.0.1:<port>``."""
    port = free_port()
    argv = [sys.executable, "-m", "agent_runtime", "web", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    process = ManagedProcess("kubevox-agent web", argv, log, env={**os.environ, **livekit.env()})
    process.start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    try:
        # the command imports the runtime first: seconds on a busy machine
        wait_for("kubevox-agent web", healthy, 120, process.alive)
    except BaseException:
        tail = process.log_tail(20)
        process.stop()
        raise RuntimeError(f"the web gateway did not start:\n{tail}") from None
    try:
        yield url
    finally:
        process.stop(timeout=10)


def call_options(
    livekit: LiveKitServer, agent_name: str = default_agent_name("e2e", "offline")
) -> CallOptions:
    return CallOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name=agent_name,
        reply_timeout=45.0,
        greeting_timeout=60.0,
    )
