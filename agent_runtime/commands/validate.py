"""``kubevox-agent validate``: check a manifest or rendered config; non-zero naming the field."""

from __future__ import annotations

import argparse
import os

from ..providers import check_providers
from ._common import add_config_arguments, load_from_args

NAME = "validate"
HELP = "Check a VoiceAgent manifest or runtime config and exit non-zero naming a bad field."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--check-credentials",
        action="store_true",
        help="also require every provider's API key in the environment",
    )


def run(args: argparse.Namespace) -> int:
    config = load_from_args(args)
    check_providers(config, os.environ, credentials=args.check_credentials)
    print(f"ok: VoiceAgent {config.namespace}/{config.name} (agent name {config.agent_name})")
    return 0
