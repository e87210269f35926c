"""``kubevox-agent recordings expire|erase``: the recordings of an agent (``spec.recording``) in
its storage, with the workers' configuration and key pair (run in a worker pod with
``kubectl exec``, or by the operator's daily expiry CronJob).

    kubevox-agent recordings expire                        # older than retentionDays
    kubevox-agent recordings erase --call-id <call id>     # one call's recording
    kubevox-agent recordings erase --caller-number +1555…  # every recording of a phone number

Each prints one JSON line: what it deleted, and what the storage failed to delete (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import ConfigError
from ..recording.storage import RecordingStore
from ._common import add_config_arguments, load_from_args

NAME = "recordings"
HELP = "expire or erase an agent's call recordings in its storage"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("expire", help="delete the recordings older than retentionDays")
    erase = actions.add_parser("erase", help="delete one call's, or one caller's, recordings")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--call-id", help="the call's id (the call record's call_id)")
    who.add_argument("--caller-number", help="a phone caller's number, e.g. +15550100100")


def run(args: argparse.Namespace) -> int:
    config = load_from_args(args)
    spec = config.spec.recording
    if spec is None:
        raise ConfigError(f"VoiceAgent {config.name}: spec.recording is not set")
    try:
        store = RecordingStore(spec.storage, config.namespace, config.name, os.environ)
    except KeyError as e:
        raise ConfigError(f"{e.args[0]}: not set (from spec.recording.storage)") from None
    what: dict[str, object]
    if args.action == "expire":
        names = store.older_than(spec.retention_days)
        what = {"retention_days": spec.retention_days}
    elif args.call_id:
        names, what = store.of_call(args.call_id), {"call_id": args.call_id}
    else:  # the number is personal data: it is not printed
        names, what = store.of_caller(args.caller_number), {"caller_number": "[given]"}
    failed = store.delete(names) if names else []
    deleted = [n for n in names if n not in failed]
    print(json.dumps({"action": args.action, **what, "deleted": deleted, "failed": failed}))
    if failed:
        print(f"recordings: {len(failed)} not deleted: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
