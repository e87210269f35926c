"""Answer quality and speed of the offline LLM (SmolLM2-135M), with and without the grounding guard.

    python bench/llm_eval.py [--limit N] [--write-docs]

Ingests the knowledge-base evaluation documents (tests/knowledge/eval/) into a local Redis with
search, and for every question of tests/knowledge/eval/questions.yaml, answerable or not (its
`unanswerable:` list): retrieves the top 4 chunks (hybrid), adds them with the
runtime's own ``with_context`` and asks the local model through its livekit plugin (which
condenses them to the best-matching sentences, ``--context-budget``), and judges the raw answer
and the guarded one. Time to first token: from the request to the first streamed token.

Each answer is classed, in this order:
* correct: answerable question, and the answer contains the labelled answer's key words (60%)
  and all its numbers; unanswerable question, and the answer declines;
* declined: an honest "I don't know" (or the guard's refusal);
* off-target: every sentence is a true statement of the documents (supported by one sentence of
  the whole collection, numbers in order) but not the answer;
* made-up: at least one sentence is supported by no sentence of the whole collection.
"Supported" is the guard's own lexical test, applied here to the whole collection rather than to
the retrieved passages; the printed samples let a human check the classes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from knowledge_eval import EVAL_DIR, eval_knowledge_base, indexed  # noqa: E402
from livekit.agents import llm  # noqa: E402

from agent_runtime.grounding import with_context  # noqa: E402
from agent_runtime.grounding_guard import _REFUSALS, GroundingGuard, evidence_of  # noqa: E402
from agent_runtime.knowledge import LocalEmbedder, connect  # noqa: E402
from agent_runtime.knowledge.evaluation import load_unanswerable  # noqa: E402
from agent_runtime.plugins.local_llm import (  # noqa: E402
    DEFAULT_CONTEXT_BUDGET,
    LocalLLM,
    load_local_model,
)
from agent_runtime.text import key_terms, numbers, split_sentences  # noqa: E402

INSTRUCTIONS = (
    "You are the front desk of Northwind Clinic. Answer in one short sentence using only the "
    "clinic information you are given."
)
TOP_K = 4


@dataclass(frozen=True)
class Case:
    question: str
    answer: str | None  # None: the documents do not answer it


@dataclass
class Outcome:
    case: Case
    raw: str
    guarded: str
    ttft: float
    total: float
    prompt_tokens: int
    cached_tokens: int
    raw_class: str = ""
    guarded_class: str = ""


@dataclass
class Judge:
    corpus_evidence: list[Any]
    guard: GroundingGuard = field(default_factory=GroundingGuard)

    def classify(self, case: Case, text: str) -> str:
        lowered = text.lower()
        declined = bool(_REFUSALS.search(lowered)) or self.guard.refusal.lower() in lowered
        if case.answer is None:
            if declined:
                return "correct"
        else:
            wanted = key_terms(case.answer)
            found = key_terms(text)
            if (
                wanted
                and len(wanted & found) / len(wanted) >= 0.6
                and all(n in numbers(text) for n in numbers(case.answer))
            ):
                return "correct"
        if declined:
            return "declined"
        parts = split_sentences(text) or [text]
        if all(self.guard.check(s, self.corpus_evidence).supported for s in parts):
            return "off-target"
        return "made-up"


def load_cases(limit: int | None) -> list[Case]:
    raw = yaml.safe_load((EVAL_DIR / "questions.yaml").read_text())["questions"]
    answerable = [Case(str(q["q"]), str(q["answer"])) for q in raw]
    unanswerable = [Case(q, None) for q in load_unanswerable(EVAL_DIR / "questions.yaml")]
    if limit:
        answerable = answerable[:limit]
    return answerable + unanswerable


@dataclass(frozen=True)
class Answer:
    text: str
    ttft: float
    total: float
    prompt_tokens: int
    cached_tokens: int


async def ask(model: LocalLLM, question: str, chunks: list[Any]) -> Answer:
    """One turn as the agent's llm_node makes it: instructions, the question, and the
    retrieved chunks added by the runtime's own ``with_context``."""
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=INSTRUCTIONS)
    ctx.add_message(role="user", content=question)
    ctx = with_context(ctx, chunks)
    start = time.perf_counter()
    first = None
    text = ""
    usage = None
    async with model.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                first = first or time.perf_counter() - start
                text += chunk.delta.content
            usage = chunk.usage or usage
    return Answer(
        text.strip(),
        first or 0.0,
        time.perf_counter() - start,
        usage.prompt_tokens if usage else 0,
        usage.prompt_cached_tokens if usage else 0,
    )


async def run(url: str, limit: int | None, budget: int) -> tuple[list[Outcome], dict[str, Any]]:
    embedder = LocalEmbedder()
    kb = eval_knowledge_base(index="kb-llm-eval")
    client = connect(url)
    try:
        retriever = await indexed(kb, client, embedder)
        corpus = [s.inline or "" for s in kb.spec.sources]
        judge = Judge(evidence_of(corpus))
        started = time.perf_counter()
        load_local_model()
        load_seconds = time.perf_counter() - started
        model = LocalLLM(temperature=0, max_tokens=60, context_budget=budget)
        guard = GroundingGuard()
        outcomes = []
        for case in load_cases(limit):
            chunks = list(await retriever.retrieve(case.question, TOP_K))
            passages = [c.text for c in chunks]
            a = await ask(model, case.question, chunks)
            guarded = guard.review(a.text, case.question, passages)
            outcomes.append(
                Outcome(
                    case,
                    a.text,
                    guarded,
                    a.ttft,
                    a.total,
                    a.prompt_tokens,
                    a.cached_tokens,
                    judge.classify(case, a.text),
                    judge.classify(case, guarded),
                )
            )
        return outcomes, {"load_seconds": load_seconds, "budget": budget}
    finally:
        await client.aclose()


CLASSES = ("correct", "declined", "off-target", "made-up")


def _pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100)[int(p) - 1] if len(xs) > 1 else xs[0]


def report(outcomes: list[Outcome], facts: dict[str, Any], command: str) -> str:
    n = len(outcomes)
    answerable = sum(o.case.answer is not None for o in outcomes)
    rows = []
    for label, attr in (("without the guard", "raw_class"), ("with the guard", "guarded_class")):
        counts = {c: sum(getattr(o, attr) == c for o in outcomes) for c in CLASSES}
        rows.append(
            f"| {label} | "
            + " | ".join(f"{counts[c]} ({counts[c] / n:.0%})" for c in CLASSES)
            + " |"
        )
    ttft = [o.ttft * 1000 for o in outcomes]
    total = [o.total * 1000 for o in outcomes]
    prompt = [float(o.prompt_tokens) for o in outcomes]
    evaluated = [float(o.prompt_tokens - o.cached_tokens) for o in outcomes]
    start, end = facts["load_start"], os.getloadavg()
    samples = "\n".join(
        f"| {o.case.question} | {o.raw} | {o.guarded} | {o.guarded_class} |"
        for o in outcomes[:: max(1, n // 12)]
    )
    return f"""## Offline LLM (SmolLM2-135M-Instruct) — answers and speed

Command: `{command}` ({os.cpu_count()} cores; load average {_load(start)} at the start,
{_load(end)} at the end; model load {facts["load_seconds"]:.1f} s). {n} questions: {answerable}
answerable from the evaluation documents (tests/knowledge/eval/) and {n - answerable} that they
do not answer (listed as `unanswerable:` there). Top {TOP_K} hybrid chunks through the runtime's
`with_context`, condensed by the local provider to the sentences that best match the question
(budget {facts["budget"]} tokens), temperature 0, at most 60 tokens. Classes as defined in
bench/llm_eval.py ("made-up" = a sentence no sentence of the whole collection supports, judged
lexically).

| answers | correct | declined | off-target | made-up |
|---|---|---|---|---|
{rows[0]}
{rows[1]}

Time to first token p50 {statistics.median(ttft):.0f} ms, p95 {_pct(ttft, 95):.0f} ms; full
answer p50 {statistics.median(total):.0f} ms, p95 {_pct(total, 95):.0f} ms (2 threads). Prompt
{statistics.median(prompt):.0f} tokens (p50), of which {statistics.median(evaluated):.0f} evaluated
(p50, p95 {_pct(evaluated, 95):.0f}); the rest came from llama.cpp's prompt cache.

A sample, for a human to judge the classes:

| question | model | spoken with the guard | class |
|---|---|---|---|
{samples}
"""


def _load(avg: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--limit", type=int, help="answerable questions to use (default: all)")
    ap.add_argument(
        "--write-docs", action="store_true", help="replace the section in docs/benchmarks.md"
    )
    ap.add_argument(
        "--context-budget",
        type=int,
        default=DEFAULT_CONTEXT_BUDGET,
        help="tokens of knowledge excerpts the local provider keeps",
    )
    args = ap.parse_args()
    command = " ".join(["python bench/llm_eval.py", *sys.argv[1:]])
    load_start = os.getloadavg()
    if args.redis_url:
        outcomes, facts = asyncio.run(run(args.redis_url, args.limit, args.context_budget))
    else:
        from kubevox_devenv.redis import RedisSearchServer

        with RedisSearchServer() as server:
            outcomes, facts = asyncio.run(run(server.url, args.limit, args.context_budget))
    facts["load_start"] = load_start
    text = report(outcomes, facts, command)
    print(text)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
    return 0


def write_section(path: Path, section: str) -> None:
    """Replace the section titled like ``section``'s first line, up to the next heading of its
    level or above (its title is a ``###``: the next ``###`` section is not its own)."""
    title = section.splitlines()[0]
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    if title in doc:
        start = doc.index(title)
        level = len(title) - len(title.lstrip("#"))
        after = re.compile(rf"^#{{1,{level}}} ", re.M).search(doc, start + len(title))
        end = after.start() - 1 if after else -1
        doc = doc[:start] + section.rstrip() + "\n" + (doc[end:] if end != -1 else "")
    else:
        doc = doc.rstrip() + "\n\n" + section
    path.write_text(doc)


if __name__ == "__main__":
    sys.exit(main())
