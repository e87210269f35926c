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
from .early_stop import TERMINATED, exit_process, stop_at_once
from .errors import ConfigError


def _command_modules(wanted: str | None = None) -> list[ModuleType]:
    """The subcommand modules; only ``wanted``'s when it names one (module ``build_static_model``
    is command ``build-static-model``). Each imports its own stack (the worker's is livekit-agents
    and the models' runtimes): the web gateway's pod would carry them all, 170 MB instead of 65."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(commands.__path__)
        if not info.name.startswith("_")
    )
    module = wanted.replace("-", "_") if wanted else None
    if module in names:
        names = [module]
    mods = []
    for name in names:
        mod = importlib.import_module(f"{commands.__name__}.{name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            mods.append(mod)
    return mods


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``command`` alone when it names one."""
    parser = argparse.ArgumentParser(prog="kubevox-agent", description="kubevox agent runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in _command_modules(command):
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stop_at_once(TERMINATED)  # an ingestion stopped half-way has not succeeded
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args._run(args))
    except ConfigError as e:
        print(f"kubevox-agent: {e}", file=sys.stderr)
        return 2


def run() -> None:
    """The ``kubevox-agent`` command: ``main``, then the process's exit (early_stop.py)."""
    exit_process(main())


if __name__ == "__main__":
    run()
