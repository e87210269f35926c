"""``kubevox-agent ingest -f knowledgebase.yaml``: build (or confirm) a knowledge base's index.

Prints one JSON document (the KnowledgeBase status fields) on stdout, and with
``--termination-log`` also writes it there, where the operator reads the finished Job's result.
Exit code 0 when the index is current, 1 when ingestion failed (the previous version still
serves), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agent_runtime.knowledge import connect, ingest
from agent_runtime.knowledge.errors import KnowledgeError
from agent_runtime.knowledge.ingest import IngestResult
from agent_runtime.knowledge.manifest import embedder_for, load_knowledge_base, redis_url
from agent_runtime.knowledge.netguard import (
    ALLOWED_CIDRS_ENV,
    AddressPolicy,
    IPNetwork,
    parse_cidrs,
)

TERMINATION_LOG_MAX = 4096


NAME = "ingest"
HELP = "index a KnowledgeBase's sources into Redis (prints the result as JSON)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register on an argparse sub-parser set (the dispatcher may call add_arguments instead)."""
    p: argparse.ArgumentParser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--file", type=Path, required=True, help="KnowledgeBase manifest (YAML)")
    p.add_argument("--redis-url", help="Redis with the search module (default: $REDIS_URL)")
    p.add_argument(
        "--sources-dir",
        type=Path,
        help="where ConfigMaps/Secrets are mounted: <dir>/configmap/<name>/<key>, "
        "<dir>/secret/<name>/<key>",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="index the sources that could be read even if others failed",
    )
    p.add_argument(
        "--allowed-cidrs",
        type=_cidrs,
        default=os.environ.get(ALLOWED_CIDRS_ENV, ""),
        help="internal networks URL sources may reach, e.g. 10.20.0.0/16,192.168.7.0/24 "
        "(default: $" + ALLOWED_CIDRS_ENV + "; none: loopback, private, link-local, "
        "metadata and other internal addresses are refused)",
    )
    p.add_argument(
        "--termination-log",
        type=Path,
        help="also write the result JSON here (e.g. /dev/termination-log)",
    )


def _cidrs(value: str) -> tuple[IPNetwork, ...]:
    try:
        return parse_cidrs(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--allowed-cidrs: {exc}") from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        # An unset flag keeps the environment's string default, which argparse does not convert.
        allowed = (
            _cidrs(args.allowed_cidrs)
            if isinstance(args.allowed_cidrs, str)
            else args.allowed_cidrs
        )
        args.policy = AddressPolicy(allowed)
    except argparse.ArgumentTypeError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    try:
        kb = load_knowledge_base(args.file)
        url = redis_url(args.redis_url)
        embedder = embedder_for(kb)
    except KnowledgeError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    result = asyncio.run(_ingest(kb, url, embedder, args))
    text = result.to_json()
    print(text, flush=True)
    if args.termination_log:
        try:
            args.termination_log.write_text(result.to_json(max_bytes=TERMINATION_LOG_MAX))
        except OSError as exc:
            print(f"ingest: cannot write {args.termination_log}: {exc}", file=sys.stderr)
    level = "" if result.ok else "FAILED: "
    print(f"ingest: {level}{result.message}", file=sys.stderr)
    for err in result.source_errors:
        print(f"  source {err.source}: {err.message}", file=sys.stderr)
    return 0 if result.ok else 1


async def _ingest(kb: Any, url: str, embedder: Any, args: argparse.Namespace) -> IngestResult:
    client = connect(url)
    try:
        return await ingest(
            kb,
            client,
            embedder,
            sources_dir=args.sources_dir,
            allow_partial=args.allow_partial,
            policy=args.policy,
        )
    finally:
        await client.aclose()
        if hasattr(embedder, "aclose"):
            await embedder.aclose()
