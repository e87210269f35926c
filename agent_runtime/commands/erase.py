"""``kubevox-agent erase --call-id ID | --caller-number N``: everything kubevox holds about one
call, or about one phone number's calls, for an erasure request (agent_runtime/erasure.py): their
recordings, and their events, records and transcripts in the agent's outbox and Redis Stream
sinks. Run it in a worker pod (``kubectl exec``): it uses the workers' configuration and
secrets. It prints one JSON line (the calls, what it deleted where; never the number) and exits
1 if the storage failed to delete a recording.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from ..erasure import erase
from ._common import add_config_arguments, load_from_args

NAME = "erase"
HELP = "erase one call's, or one phone number's, recordings, records and transcripts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--call-id", action="append", help="a call's id (repeatable)")
    who.add_argument("--caller-number", help="a phone caller's number, e.g. +15550100100")


def run(args: argparse.Namespace) -> int:
    config = load_from_args(args)
    done = asyncio.run(
        erase(config, os.environ, call_ids=args.call_id or (), number=args.caller_number)
    )
    print(json.dumps(done.to_json()))
    if done.failed:
        print(f"erase: {len(done.failed)} not deleted: {', '.join(done.failed)}", file=sys.stderr)
        return 1
    return 0
