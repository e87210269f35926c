"""``kubevox-agent chat``: talk to a VoiceAgent in text, before applying it.

The same Agent as in a call (instructions, knowledge grounding, tools, LLM fallbacks), with
user turns read from stdin and the agent's replies printed to stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import config_hash
from livekit.agents.voice.run_result import (
    ChatMessageEvent,
    FunctionCallEvent,
    RunEvent,
    RunResult,
)

from .. import analysis, call_events
from ..call_events.lifecycle import CallLifecycle
from ..callrecord import CallRecord
from ..controls import TextControls
from ..knowledge_hook import build_grounding
from ..logs import setup_json_logging
from ..session import build_call
from ._common import add_config_arguments, load_from_args
from ._text_mode import add_redis_argument, prepare_text_mode

NAME = "chat"
HELP = "Chat with a VoiceAgent in text over stdin/stdout (no audio)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_redis_argument(parser)
    parser.add_argument(
        "--phone",
        action="store_true",
        help="behave as if the caller were on a phone line (transfers allowed)",
    )
    parser.add_argument("--log-level", default="WARNING")


def _print_events(events: list[RunEvent]) -> None:
    for ev in events:
        if isinstance(ev, ChatMessageEvent) and ev.item.role == "assistant":
            print(f"agent> {ev.item.text_content}", flush=True)
        elif isinstance(ev, FunctionCallEvent):
            print(f"[tool {ev.item.name}]", flush=True)


async def chat(config: AgentRuntimeConfig, *, phone: bool) -> int:
    record = CallRecord.of(
        config, f"chat-{uuid.uuid4().hex[:8]}", "chat", config_hash(config), caller="text"
    )
    lifecycle = CallLifecycle(call_events.from_config(config, os.environ), record)
    lifecycle.started()
    controls = TextControls(pretend_phone=phone)
    call = build_call(
        config, record=record, controls=controls, grounding=build_grounding(config), audio=False
    )
    closed = asyncio.Event()
    call.session.on("close", lambda _ev: closed.set())
    loop = asyncio.get_running_loop()
    async with call.session as session:
        greeting = await session.start(call.agent, capture_run=True)
        _print_events(greeting.events)
        while not closed.is_set():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            result: RunResult[None] = await session.run(user_input=line.strip())
            _print_events(result.events)
            for to in controls.transfers:
                print(f"[transferred to {to}]", flush=True)
            controls.transfers.clear()
    await end_of_chat(config, lifecycle)
    return 0


async def end_of_chat(config: AgentRuntimeConfig, lifecycle: CallLifecycle) -> None:
    """The session's record, printed, and delivered to the agent's sinks as a call's would be
    (spec.callEvents): a team tests its integration without placing a call."""
    record = await lifecycle.ended()
    print(json.dumps(record), flush=True)
    delivery = analysis.build_delivery(config, os.environ, consumer=f"chat-{os.getpid()}")
    if lifecycle.publisher is None or delivery is None:
        return
    try:
        delivered = await delivery.deliver_pending_once()
        print(f"[{delivered} call events delivered to the agent's sinks]", flush=True)
    finally:
        await delivery.aclose()
        await lifecycle.publisher.aclose()


def run(args: argparse.Namespace) -> int:
    setup_json_logging(args.log_level)
    config = load_from_args(args)
    prepare_text_mode(config, args.redis_url)
    return asyncio.run(chat(config, phone=args.phone))
