"""What the text-mode subcommands (``chat``, ``test``) share: where the knowledge is, and the
language models checked and loaded before the first turn."""

from __future__ import annotations

import argparse
import os

from kubevox_api import AgentRuntimeConfig

from ..knowledge.runtime import prewarm_embedders
from ..providers import check_providers, prewarm_providers


def add_redis_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="knowledge store of the agent's knowledge bases (default: $REDIS_URL)",
    )


def prepare_text_mode(config: AgentRuntimeConfig, redis_url: str | None) -> None:
    """Point the knowledge bases at ``redis_url``; check the language models' keys and load
    their models and the embedders, as a worker's prewarm does: before the first turn, not
    during it. Text mode speaks no audio, so speech providers are neither checked nor loaded."""
    if redis_url:
        for kb in config.knowledge_bases:
            os.environ.setdefault(kb.redis_url_env, redis_url)
    check_providers(config, os.environ, speech=False)
    prewarm_providers(config, speech=False)
    prewarm_embedders(config.knowledge_bases, os.environ)
