"""``kubevox-agent test``: hold a VoiceAgentTest's conversations with an agent, before applying it.

``kubevox-agent test -f agent.yaml -f tests.yaml`` runs every case of the VoiceAgentTest
documents whose ``agentRef`` is the file's VoiceAgent, in text mode (the same Agent as in a
call, without speech), prints a table (or JSON) and exits 1 when a case fails, 2 when the files
are not valid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from kubevox_api import AgentRuntimeConfig
from kubevox_api.voiceagenttest import VoiceAgentTest

from ..agent_tests.judge import Judge, build_judge
from ..agent_tests.report import as_json, table
from ..agent_tests.runner import CaseResult, SuiteRunner
from ..config import load_manifest, load_tests
from ..errors import ConfigError
from ..knowledge.runtime import prewarm_embedders
from ..logs import setup_json_logging
from ..providers import check_providers, prewarm_providers

NAME = "test"
HELP = "Run an agent's conversation tests (VoiceAgentTest) in text mode; exit 1 on a failure."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        action="append",
        required=True,
        help="a manifest file: the VoiceAgent, the KnowledgeBases it references and the "
        "VoiceAgentTest, in one file or several (repeat -f)",
    )
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        help="run only this case (repeatable; default: every case)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="knowledge store of the agent's knowledge bases (default: $REDIS_URL)",
    )
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--log-level", default="WARNING")


def _check_cases(suites: list[VoiceAgentTest], wanted: list[str]) -> None:
    unknown = sorted(set(wanted) - {c.name for s in suites for c in s.spec.cases})
    if unknown:
        raise ConfigError(f"--case: no case named {', '.join(map(repr, unknown))}")


async def run_suites(
    config: AgentRuntimeConfig,
    suites: list[tuple[VoiceAgentTest, Judge | None]],
    wanted: list[str],
    *,
    live: bool,
) -> list[CaseResult]:
    def progress(r: CaseResult) -> None:
        if live:
            print(f"{'pass' if r.passed else 'FAIL'}  {r.name}", file=sys.stderr, flush=True)

    results = []
    for suite, judge in suites:
        cases = [c for c in suite.spec.cases if not wanted or c.name in wanted]
        runner = SuiteRunner(config, suite.spec, judge=judge)
        results += await runner.run(cases, on_result=progress)
    return results


def run(args: argparse.Namespace) -> int:
    setup_json_logging(args.log_level)
    config = load_manifest(*args.file)
    suites = load_tests(config.name, *args.file)
    if args.redis_url:
        for kb in config.knowledge_bases:
            os.environ.setdefault(kb.redis_url_env, args.redis_url)
    _check_cases(suites, args.case)
    check_providers(config, os.environ, speech=False)
    # A judge that cannot be built (no key, provider local) fails before any case runs.
    judged = [(suite, build_judge(suite.spec, config)) for suite in suites]
    prewarm_providers(config, speech=False)
    prewarm_embedders(config.knowledge_bases, os.environ)
    results = asyncio.run(run_suites(config, judged, args.case, live=args.output == "table"))
    if args.output == "json":
        print(json.dumps(as_json(results), indent=2))
    else:
        print(table(results))
    return 0 if all(r.passed for r in results) else 1
