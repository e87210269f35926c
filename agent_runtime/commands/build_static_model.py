"""``kubevox-agent build-static-model``: distil the static embedding matrix (about a minute on
2 cores) at install or image build time; see :mod:`agent_runtime.knowledge.static_model`."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from ..knowledge import static_model

NAME = "build-static-model"
HELP = "Build the static embedding matrix (embedding model all-MiniLM-L6-v2-static, ~1 min)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="directory (default: the Python environment's)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    parser.add_argument(
        "--cache", type=Path, help="take the matrix from this directory, distilled there if missing"
    )


def run(args: argparse.Namespace) -> int:
    name = static_model.file_name()
    if args.cache:  # image builds: a code change must not cost another distillation
        cached = args.cache / name
        if args.force or not cached.is_file():
            static_model.build(args.cache, args.threads)
        target_dir = args.out or static_model.default_dir()
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target_dir / name)
        os.chmod(target_dir / name, 0o644)
        print(f"copied {cached} to {target_dir}")
        return 0
    existing = args.out / name if args.out else static_model.find()
    if existing is not None and existing.is_file() and not args.force:
        print(f"up to date: {existing}")
        return 0
    t0 = time.perf_counter()
    path = static_model.build(args.out, args.threads)
    print(f"built {path} in {time.perf_counter() - t0:.0f}s")
    return 0
