"""Arguments and loading shared by the subcommands that take an agent."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV

from ..config import load_manifest, load_runtime_config, resolve_config_path
from ..errors import ConfigError


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


def livekit_credentials(
    config: AgentRuntimeConfig, env: Mapping[str, str] = os.environ
) -> tuple[str, str]:
    """The LiveKit API key and secret, which the operator puts in the environment from
    spec.livekit.credentialsSecretRef; a ConfigError names the one missing and that Secret."""
    ref = config.spec.livekit.credentials_secret_ref.name
    values = []
    for var in (LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV):
        value = env.get(var)
        if not value:
            raise ConfigError(f"{var}: not set (from spec.livekit.credentialsSecretRef {ref!r})")
        values.append(value)
    return values[0], values[1]
