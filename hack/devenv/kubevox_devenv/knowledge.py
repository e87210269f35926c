"""Ingest a KnowledgeBase the way the operator's Job does: `kubevox-agent ingest` on its
manifest, reading the result JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


class IngestError(RuntimeError):
    """`kubevox-agent ingest` failed; the message is its output."""


def ingest_manifest(doc: dict[str, Any], redis_url: str, workdir: Path) -> dict[str, Any]:
    """Write ``doc`` (a KnowledgeBase manifest) under ``workdir``, ingest it into ``redis_url``,
    and return the result (documents, chunks, contentHash, durationSeconds, ...)."""
    path = workdir / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_runtime",
            "ingest",
            "-f",
            str(path),
            "--redis-url",
            redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise IngestError(out.stdout + out.stderr)
    result: dict[str, Any] = json.loads(out.stdout)
    return result
