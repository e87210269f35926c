"""Extraction accuracy of the calls' analysis (spec.analysis) on an evaluation set with known
answers: bench/data/analysis_eval.yaml, 32 clinic calls, four declared fields and a rubric.

    python bench/analysis_eval.py                       # the offline SmolLM2-135M, in-process
    python bench/analysis_eval.py --base-url URL --model NAME [--api-key-env VAR]
    ... [--limit N] [--write-docs]

Each call goes through the runtime's own analyst (agent_runtime.analysis.CallAnalyst: the same
request, the same checks of the answer). A field is scored against the set's answer:
* correct: the value expected, or missing where the call gives none;
* invented: a value where the call gives none (the failure that misleads a team most);
* missed: missing where the call gives one;
* wrong: another value;
* failed: the analysis itself failed (``error``: no JSON object, no answer in time).
The verdict is scored against the set's pass or fail. The offline model is refused by the API
for analysis (provider ``local``); this measures why, and the same command measures the model a
team means to use, through any OpenAI-compatible endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kubevox_api.voiceagent_analysis import AnalysisSpec  # noqa: E402
from kubevox_api.voiceagent_providers import LLMEndpoint  # noqa: E402
from livekit.agents import llm  # noqa: E402
from llm_eval import write_section  # noqa: E402

from agent_runtime.analysis import CallAnalyst  # noqa: E402
from agent_runtime.providers import BuildContext, build_llm_endpoint  # noqa: E402

EVAL_SET = ROOT / "bench" / "data" / "analysis_eval.yaml"
SPEAKERS = {"a": "assistant", "c": "user"}
TITLE = "### Call analysis: extraction accuracy (bench/analysis_eval.py)"


@dataclass
class Scored:
    fields: dict[str, str]
    """Each field's class: correct, invented, missed, wrong, failed."""
    verdict: bool | None
    """Whether the verdict matched the set's (None: no verdict)."""
    error: str | None
    seconds: float


def load_set(limit: int | None) -> tuple[AnalysisSpec, list[dict[str, Any]]]:
    data = yaml.safe_load(EVAL_SET.read_text())
    spec = AnalysisSpec.model_validate(
        {
            "timeoutSeconds": 120,
            "structuredData": {"fields": data["fields"]},
            "successEvaluation": {"rubric": data["rubric"]},
        }
    )
    return spec, data["calls"][:limit]


def transcript(call: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for line in call["lines"]:
        who, _, text = line.partition(": ")
        out.append({"role": SPEAKERS[who], "text": text})
    return out


def score(call: dict[str, Any], analysis: dict[str, Any], seconds: float) -> Scored:
    got = analysis.get("structured_data", {})
    fields = {}
    for name, expected in call["expect"].items():
        value = got.get(name)
        if "error" in analysis:
            fields[name] = "failed"
        elif value == expected or (expected is None and value is None):
            fields[name] = "correct"
        elif expected is None:
            fields[name] = "invented"
        elif value is None:
            fields[name] = "missed"
        else:
            fields[name] = "wrong"
    success = analysis.get("success")
    verdict = None if success is None else success["passed"] == (call["success"] == "pass")
    return Scored(fields, verdict, analysis.get("error"), seconds)


def model_of(args: argparse.Namespace) -> tuple[llm.LLM[Any], str]:
    if args.base_url is None:
        from agent_runtime.plugins.local_llm import LocalLLM, load_local_model

        load_local_model()
        return LocalLLM(temperature=0, max_tokens=256), "local SmolLM2-135M-Instruct (Q4_1)"
    endpoint = LLMEndpoint(
        provider="openai", model=args.model, base_url=args.base_url, temperature=0,
        timeout_seconds=120,
    )  # fmt: skip
    env = {"KUBEVOX_ANALYSIS_API_KEY": os.environ.get(args.api_key_env or "", "none")}
    model = build_llm_endpoint(
        endpoint, "--base-url", "KUBEVOX_ANALYSIS_API_KEY", BuildContext(language="en"), env
    )
    return model, f"{args.model} at {args.base_url}"


async def run(args: argparse.Namespace) -> tuple[list[Scored], str]:
    spec, calls = load_set(args.limit)
    model, name = model_of(args)
    analyst = CallAnalyst(spec, model)
    out = []
    for call in calls:
        started = time.perf_counter()
        analysis = await analyst.analyse(transcript(call))
        out.append(score(call, analysis, time.perf_counter() - started))
    return out, name


def report(scored: list[Scored], model: str, command: str, load: tuple[float, ...]) -> str:
    classes = Counter(c for s in scored for c in s.fields.values())
    total = sum(classes.values())
    by_field: dict[str, Counter[str]] = {}
    for s in scored:
        for name, c in s.fields.items():
            by_field.setdefault(name, Counter())[c] += 1
    verdicts = [s.verdict for s in scored]
    exact = sum(all(c == "correct" for c in s.fields.values()) for s in scored)
    times = sorted(s.seconds for s in scored)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    errors = Counter((s.error or "")[:60] for s in scored if s.error)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        TITLE,
        "",
        f"`{command}` ({when}, the project's 2-core VM, load average at the start "
        f"{' / '.join(f'{x:.2f}' for x in load)}): {len(scored)} calls of "
        f"`bench/data/analysis_eval.yaml`, four declared fields each, analysed by {model} "
        "through the runtime's own `CallAnalyst`.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| fields correct (the value, or missing where the call gives none) | "
        f"**{classes['correct']}/{total}** ({100 * classes['correct'] / max(total, 1):.0f} %) |",
        f"| fields invented (a value where the call gives none) | {classes['invented']} |",
        f"| fields missed / wrong | {classes['missed']} / {classes['wrong']} |",
        f"| fields of analyses that failed | {classes['failed']} |",
        f"| calls with every field correct | {exact}/{len(scored)} |",
        f"| verdicts right / wrong / none | {verdicts.count(True)} / {verdicts.count(False)} /"
        f" {verdicts.count(None)} |",
        f"| analyses that failed (`error`) | {sum(errors.values())} |",
        f"| time per analysis, p50 / p95 | {statistics.median(times):.2f} / {p95:.2f} s |",
        "",
        "| field | correct | invented | missed | wrong | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in by_field.items():
        counts = " | ".join(str(c[k]) for k in ("correct", "invented", "missed", "wrong", "failed"))
        lines.append(f"| {name} | {counts} |")
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{n} x {e!r}" for e, n in errors.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: the local model)")
    ap.add_argument("--model", default="gpt-4.1-mini", help="the endpoint's model")
    ap.add_argument("--api-key-env", help="the environment variable holding the endpoint's key")
    ap.add_argument("--limit", type=int, help="calls to analyse (default: all)")
    ap.add_argument("--write-docs", action="store_true", help="replace the section in docs")
    args = ap.parse_args()
    command = " ".join(["python bench/analysis_eval.py", *sys.argv[1:]])
    load = os.getloadavg()
    scored, model = asyncio.run(run(args))
    text = report(scored, model, command, load)
    print(text)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
