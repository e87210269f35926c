"""``kubevox-agent test``: hold a VoiceAgentTest's conversations with an agent, before applying it.

``kubevox-agent test -f agent.yaml -f tests.yaml`` runs every case of the VoiceAgentTest
documents whose ``agentRef`` is the file's VoiceAgent, in text mode (the same Agent as in a
call, without speech; before applying a change), or with ``--audio`` as calls through LiveKit to
the agent as deployed; it prints a table (or JSON) and exits 1 when a case fails, 2 when the
files are not valid. On the cluster the operator's test Job runs it with ``--config`` (the
agent's rendered configuration) and ``--report-file`` (its termination message, which the
operator reads into the VoiceAgentTests' status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable

from kubevox_api import AgentRuntimeConfig
from kubevox_api.runtime_config import config_hash
from kubevox_api.voiceagenttest import (
    ReportedCase,
    TestReport,
    VoiceAgentTest,
    VoiceAgentTestSpec,
    suites_hash,
)

from ..agent_tests.audio import AudioRunner, inaudible
from ..agent_tests.judge import Judge, build_judge
from ..agent_tests.report import as_json, table
from ..agent_tests.runner import CaseResult, Runner, TextRunner, judges_for
from ..config import load_manifest, load_runtime_config, load_tests
from ..errors import ConfigError
from ..logs import setup_json_logging
from ._common import add_caller_arguments, caller_options
from ._text_mode import add_redis_argument, prepare_text_mode

NAME = "test"
HELP = "Run an agent's conversation tests (VoiceAgentTest); exit 1 when a case fails."


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
        "--config",
        help="the agent's runtime config rendered by the operator, instead of a VoiceAgent in "
        "the files (then they hold the VoiceAgentTests only)",
    )
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        help="run only this case (repeatable; default: every case)",
    )
    add_redis_argument(parser)
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument(
        "--report-file",
        help="also write a compact JSON report (at most 4 KiB: a container's termination "
        "message) to this file",
    )
    parser.add_argument("--log-level", default="WARNING")
    audio = parser.add_argument_group(
        "audio", "call the deployed agent through LiveKit instead, speaking and listening"
    )
    audio.add_argument(
        "--audio",
        action="store_true",
        help="each case a call to the agent as deployed (checks only what a caller hears)",
    )
    audio.add_argument(
        "--agent",
        help="the agent name to dispatch (default: the VoiceAgent's, spec.agentName or "
        "<namespace>.<name>)",
    )
    add_caller_arguments(audio)


def _check_cases(suites: list[VoiceAgentTest], wanted: list[str]) -> None:
    unknown = sorted(set(wanted) - {c.name for s in suites for c in s.spec.cases})
    if unknown:
        raise ConfigError(f"--case: no case named {', '.join(map(repr, unknown))}")


def _unchecked_over_audio(suites: list[VoiceAgentTest]) -> list[str]:
    names = {n for s in suites for c in s.spec.cases for t in c.turns for n in inaudible(t.expect)}
    return sorted(names)


Runners = Callable[[VoiceAgentTestSpec, Judge | None], Runner]


async def run_suites(
    suites: list[tuple[VoiceAgentTest, Judge | None]],
    wanted: list[str],
    runner_for: Runners,
    *,
    live: bool,
) -> list[tuple[str, CaseResult]]:
    """Each case's result, with its suite's name."""

    def progress(r: CaseResult) -> None:
        if live:
            print(f"{'pass' if r.passed else 'FAIL'}  {r.name}", file=sys.stderr, flush=True)

    results = []
    for suite, judge in suites:
        cases = [c for c in suite.spec.cases if not wanted or c.name in wanted]
        name = str(suite.metadata.get("name", ""))
        results += [
            (name, r) for r in await runner_for(suite.spec, judge).run(cases, on_result=progress)
        ]
    return results


def reasons(result: CaseResult) -> list[str]:
    """Why a case failed, each reason naming where: the turn, the rubric, the case."""
    out = [f"turn {i}: {f}" for i, t in enumerate(result.turns, start=1) for f in t.failures]
    if result.verdict is not None and not result.verdict.passed:
        out.append(f"rubric: {result.verdict.reason}")
    return out + result.failures


def report(
    config: AgentRuntimeConfig, suites: list[VoiceAgentTest], results: list[tuple[str, CaseResult]]
) -> TestReport:
    """What the operator reads: the configuration and suites that really ran, and each case."""
    return TestReport(
        config_hash=config_hash(config),
        suites_hash=suites_hash(suites),
        cases=[
            ReportedCase(suite=suite, name=r.name, passed=r.passed, reasons=reasons(r)[:8])
            for suite, r in results
        ],
    )


def _text_runners(args: argparse.Namespace, config: AgentRuntimeConfig) -> Runners:
    prepare_text_mode(config, args.redis_url)
    return lambda suite, judge: TextRunner(config, suite, judge=judge)


def _audio_runners(
    args: argparse.Namespace, config: AgentRuntimeConfig, suites: list[VoiceAgentTest]
) -> Runners:
    options = caller_options(args, args.agent or config.agent_name)
    unchecked = _unchecked_over_audio(suites)
    if unchecked:
        print(
            f"not checked over audio (a caller cannot observe them; the text run checks them): "
            f"{', '.join(unchecked)}",
            file=sys.stderr,
        )
    judges = judges_for(config)
    return lambda suite, judge: AudioRunner(options, suite, judge=judge, judges=judges)


def run(args: argparse.Namespace) -> int:
    setup_json_logging(args.log_level)
    config = load_runtime_config(args.config) if args.config else load_manifest(*args.file)
    suites = load_tests(config.name, *args.file)
    _check_cases(suites, args.case)
    # A judge that cannot be built (no key, provider local) fails before any case runs.
    judged = [(suite, build_judge(suite.spec, config)) for suite in suites]
    runners = _audio_runners(args, config, suites) if args.audio else _text_runners(args, config)
    live = args.output == "table"
    named = asyncio.run(run_suites(judged, args.case, runners, live=live))
    results = [r for _, r in named]
    if args.report_file:
        with open(args.report_file, "w") as f:
            f.write(report(config, suites, named).termination_message())
    if args.output == "json":
        print(json.dumps(as_json(results), indent=2))
    else:
        print(table(results))
    return 0 if all(r.passed for r in results) else 1
