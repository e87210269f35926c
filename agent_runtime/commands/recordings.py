"""``kubevox-agent recordings expire``: deletes an agent's recordings (``spec.recording``) older
than ``retentionDays``, with the workers' configuration and key pair (the operator's daily
expiry CronJob runs it). It prints one JSON line: what it deleted, and what the storage failed
to delete (exit 1). An erasure request is ``kubevox-agent erase`` (commands/erase.py).
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
HELP = "delete an agent's call recordings older than its retentionDays"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("expire", help="delete the recordings older than retentionDays")


def run(args: argparse.Namespace) -> int:
    config = load_from_args(args)
    spec = config.spec.recording
    if spec is None:
        raise ConfigError(f"VoiceAgent {config.name}: spec.recording is not set")
    store = RecordingStore(spec.storage, config.namespace, config.name, os.environ)
    names = store.older_than(spec.retention_days)
    failed = store.delete(names) if names else []
    deleted = [n for n in names if n not in failed]
    print(
        json.dumps(
            {
                "action": args.action,
                "retention_days": spec.retention_days,
                "deleted": deleted,
                "failed": failed,
            }
        )
    )
    if failed:
        print(f"recordings: {len(failed)} not deleted: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
