"""Arguments and loading shared by the subcommands that take an agent."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV

from ..config import load_manifest, load_runtime_config, resolve_config_path
from ..errors import ConfigError

if TYPE_CHECKING:  # the caller's stack (livekit rtc) is not the web gateway's
    from ..caller import CallOptions


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


_CALLER_FLAGS = (
    ("--url", "url", "LIVEKIT_URL", "LiveKit server URL"),
    ("--api-key", "api_key", "LIVEKIT_API_KEY", "LiveKit API key"),
    ("--api-secret", "api_secret", "LIVEKIT_API_SECRET", "LiveKit API secret"),
)
"""(flag, argument, environment variable, what): where a simulated caller reaches agents."""


def add_caller_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Where a simulated caller reaches agents: the LiveKit server and its API key."""
    for flag, _, env, what in _CALLER_FLAGS:
        parser.add_argument(flag, default=os.environ.get(env), help=f"{what} (default: ${env})")
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the greeting and each reply (default 30)",
    )


def caller_options(args: argparse.Namespace, agent_name: str) -> CallOptions:
    """The simulated caller's options; a ConfigError names the flag missing."""
    from ..caller import CallOptions

    for flag, name, env, _ in _CALLER_FLAGS:
        if not getattr(args, name):
            raise ConfigError(f"{flag} (or ${env}) is required")
    return CallOptions(
        url=args.url,
        api_key=args.api_key,
        api_secret=args.api_secret,
        agent_name=agent_name,
        reply_timeout=args.reply_timeout,
        greeting_timeout=args.reply_timeout,
    )
