"""``kubevox-agent call``: place simulated calls to a deployed agent through LiveKit.

A smoke test after a deploy, and the tool kubevox's end-to-end tests and benchmarks use: the
caller dispatches the agent into a new room, speaks its turns (offline TTS, or WAV files),
transcribes what the agent says (offline STT) and prints, per turn, what it said, what it heard
and the voice-to-voice latency measured on the audio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import yaml

from ..caller import run_calls
from ..caller.audio import Utterance, read_wav, synthesize
from ..caller.report import table
from ..errors import ConfigError
from ._common import add_caller_arguments, caller_options

NAME = "call"
HELP = "Place simulated calls to an agent through LiveKit and measure voice-to-voice latency."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caller_arguments(parser)
    parser.add_argument(
        "--agent",
        required=True,
        help="the agent name to dispatch: the VoiceAgent's status.agentName (spec.agentName, else "
        "<namespace>.<name>)",
    )
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="a caller turn, spoken with the offline voice (repeatable)",
    )
    parser.add_argument(
        "--wav",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a caller turn from a mono 16-bit WAV file (repeatable)",
    )
    parser.add_argument(
        "--script",
        type=Path,
        metavar="FILE",
        help="YAML list of turns: strings, or {say: TEXT} / {wav: FILE}",
    )
    parser.add_argument("--calls", type=int, default=1, help="simultaneous calls (default 1)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")


def _turns(args: argparse.Namespace) -> list[Utterance]:
    turns: list[Utterance] = [synthesize(text) for text in args.say]
    turns += [read_wav(path) for path in args.wav]
    if args.script:
        script = yaml.safe_load(args.script.read_text())
        if not isinstance(script, list):
            raise ConfigError(f"--script {args.script}: expected a YAML list of turns")
        for i, turn in enumerate(script):
            if isinstance(turn, str):
                turns.append(synthesize(turn))
            elif isinstance(turn, dict) and "say" in turn:
                turns.append(synthesize(str(turn["say"])))
            elif isinstance(turn, dict) and "wav" in turn:
                path = args.script.parent / str(turn["wav"])
                turns.append(read_wav(path, str(turn.get("text", ""))))
            else:
                raise ConfigError(f"--script {args.script}: turn {i} must be text, say: or wav:")
    return turns


def run(args: argparse.Namespace) -> int:
    options = caller_options(args, args.agent)
    if args.calls < 1:
        raise ConfigError("--calls must be at least 1")
    results = asyncio.run(run_calls(options, _turns(args), args.calls))
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(table(results))
    failed = any(r.error or any(t.latency_ms is None for t in r.turns) for r in results)
    return 1 if failed else 0
