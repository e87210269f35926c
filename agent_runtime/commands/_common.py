"""Arguments and loading shared by the subcommands that take an agent."""

from __future__ import annotations

import argparse

from kubevox_api import AgentRuntimeConfig

from ..config import load_manifest, load_runtime_config, resolve_config_path


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "-f",
        "--file",
        help="a VoiceAgent manifest (YAML; may also contain the "
        "KnowledgeBase manifests it references)",
    )
    src.add_argument(
        "--config", help="a runtime config rendered by the operator (default: $KUBEVOX_CONFIG)"
    )


def load_from_args(args: argparse.Namespace) -> AgentRuntimeConfig:
    if args.file:
        return load_manifest(args.file)
    return load_runtime_config(resolve_config_path(args.config))
