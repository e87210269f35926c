"""``kubevox-agent``: a dispatcher over the subcommand modules in ``agent_runtime.commands``.

A subcommand is a module there with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; new modules (e.g. the knowledge base's ``ingest``/``query``) are picked
up without touching this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from . import commands
from .early_stop import TERMINATED, stop_at_once
from .errors import ConfigError


def _command_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubevox-agent", description="kubevox agent runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stop_at_once(TERMINATED)  # an ingestion stopped half-way has not succeeded
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except ConfigError as e:
        print(f"kubevox-agent: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
